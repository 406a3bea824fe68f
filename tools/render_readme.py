"""Render nbs/index.ipynb to README.md without Quarto (which `nbdev-readme` needs and pip cannot install).

Cells marked `#| hide` are left out and nbdev's `#|` directive lines are stripped, as nbdev's own docs do.
`python tools/render_readme.py` writes README.md; `--check` exits 1 if README.md is out of date."""
import sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/"nbs"/"index.ipynb"):
    "The README text rendered from the index notebook."
    nb = nbformat.read(nb_path, as_version=4)
    keep = []
    for c in nb.cells:
        lines = c.source.splitlines()
        if c.cell_type == "code" and any(l.strip() in ("#| hide", "#|hide") for l in lines): continue
        if c.cell_type == "code":
            c.source = "\n".join(l for l in lines if not l.lstrip().startswith("#|")).strip("\n")
            c.outputs = []
        keep.append(c)
    nb.cells = keep
    body, _ = MarkdownExporter().from_notebook_node(nb)
    return "<!-- generated from nbs/index.ipynb by tools/render_readme.py: edit the notebook, then `make readme` -->\n\n" + body.strip() + "\n"

if __name__ == "__main__":
    text, readme = render(), ROOT/"README.md"
    if "--check" in sys.argv:
        ok = readme.exists() and readme.read_text(encoding="utf-8") == text
        print("README.md is in sync with nbs/index.ipynb" if ok else "README.md is out of date: run `make readme`")
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding="utf-8")
