"""`make test`: every notebook's tests, each run by the card's own command (`nbdev-test NOTEBOOK`), one pytest item per
notebook so that the run ends with a count; plus the checks that keep the repository honest: the library is what the
notebooks export, the notebooks are clean, README.md is rendered from nbs/index.ipynb, the workshop notebooks in vm/
and aml/ run top to bottom, and nothing was written into HOME.

Skipped cell flags come from `[tool.nbdev] tst_flags`; `FLAGS="slow"` runs those cells too. The sandbox (temporary HOME,
tiny-model cache, offline hub) is set in conftest.py."""
import builtins, json, os, re, shutil, subprocess, sys, warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# slowest first, so that with two workers the long notebooks start at once
_SLOW = ["02b_train.ipynb", "01_model.ipynb"]
NBS = sorted((ROOT/"nbs").glob("*.ipynb"), key=lambda p: (p.name not in _SLOW, _SLOW.index(p.name) if p.name in _SLOW else 0, p.name))
WORKSHOPS = sorted([*(ROOT/"vm").glob("*.ipynb"), *(ROOT/"aml").glob("*.ipynb")])
BIN = Path(sys.executable).parent


def test_there_is_something_to_test():
    names = [p.name for p in NBS]
    assert {"00_data.ipynb", "01_model.ipynb", "02b_train.ipynb", "03_azure.ipynb", "index.ipynb"} <= set(names), names
    assert WORKSHOPS, "no workshop notebooks in vm/ or aml/"


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_notebook(nb):
    # exactly what `nbdev-test` does for one notebook: the cells in order, tst_flags skipped unless FLAGS forces them
    flags = os.environ.get("FLAGS", "")
    # (--verbose: the cells' stderr reaches us, so the notebook's warnings count in pytest's summary like any test's)
    r = subprocess.run([BIN/"nbdev-test", str(nb.relative_to(ROOT)), "--flags", flags, "--do-print", "--verbose"], cwd=ROOT,
                       capture_output=True, text=True)
    report_warnings(r.stderr, nb.name)
    assert r.returncode == 0 and "Success." in r.stdout + r.stderr, f"{nb.name} failed:\n{r.stdout[-3000:]}{r.stderr[-6000:]}"


_WARNING = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+): (?P<cat>[A-Za-z_]\w*Warning): (?P<msg>.*)$")

def _module(file):
    "The dotted module a warning's file is (what pytest's `filterwarnings` module field matches)."
    path = file.replace("\\", "/")
    for base in ("site-packages/", f"{ROOT.as_posix()}/"):
        if base in path: return path.split(base, 1)[1].removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return "notebook" if file.startswith("<") else Path(path).stem

def report_warnings(stderr, where):
    "Warn here, in pytest, each distinct warning a notebook run printed, with its category, message, file and module."
    for cat, msg, file, line in sorted({(m["cat"], m["msg"], m["file"], int(m["line"]))
                                        for m in map(_WARNING.match, re.split(r"[\r\n]", stderr)) if m}):
        category = getattr(builtins, cat, None)
        if not (isinstance(category, type) and issubclass(category, Warning)): category, msg = UserWarning, f"{cat}: {msg}"
        warnings.warn_explicit(msg, category, f"{where}: {file}" if file.startswith("<") else file, line, module=_module(file), registry={})


def test_notebook_warnings_are_reported():
    err = ("generating: 100%|##| 2/2\r/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3312: FutureWarning: `x` is deprecated\n"
           "  warnings.warn(\n<ipython-input-6-879d>:11: UserWarning: No artists with labels found\n"
           "/venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found\n"
           "/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3312: FutureWarning: `x` is deprecated\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        report_warnings(err, "00_data.ipynb")
    assert [(w.category, str(w.message), w.filename, w.lineno) for w in seen] == [
        (FutureWarning, "`x` is deprecated", "/venv/lib/python3.11/site-packages/transformers/modeling_utils.py", 3312),
        (UserWarning, "TqdmWarning: IProgress not found", "/venv/lib/python3.11/site-packages/tqdm/auto.py", 21),
        (UserWarning, "No artists with labels found", "00_data.ipynb: <ipython-input-6-879d>", 11)]
    assert _module("/venv/lib/python3.11/site-packages/transformers/modeling_utils.py") == "transformers.modeling_utils"


def _scratch_copy(tmp):
    "The notebooks, library and config in a scratch git repo, so nbdev commands never touch the work tree."
    for p in ["nbs", "qwenvl_nb", "vm", "aml"]: shutil.copytree(ROOT/p, tmp/p, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT/"pyproject.toml", tmp)
    return tmp


def _changed(before, after_dir, pattern):
    return sorted(str(p.relative_to(after_dir)) for p in after_dir.glob(pattern)
                  if p.read_bytes() != before.get(str(p.relative_to(after_dir)))) + \
           sorted(k for k in before if not (after_dir/k).exists())


def test_library_is_exported_from_notebooks(tmp_path):
    tmp = _scratch_copy(tmp_path)
    before = {str(p.relative_to(tmp)): p.read_bytes() for p in tmp.glob("qwenvl_nb/*.py")}
    subprocess.run([BIN/"nbdev-export"], cwd=tmp, check=True, capture_output=True)
    assert _changed(before, tmp, "qwenvl_nb/*.py") == [], "qwenvl_nb/ differs from what the notebooks export: run `make export`"


def test_notebooks_are_clean(tmp_path):
    tmp = _scratch_copy(tmp_path)
    before = {str(p.relative_to(tmp)): p.read_bytes() for p in tmp.glob("*/*.ipynb")}
    for args in [[], ["--fname", "vm"], ["--fname", "aml"]]:
        subprocess.run([BIN/"nbdev-clean", *args], cwd=tmp, check=True, capture_output=True)
    assert _changed(before, tmp, "*/*.ipynb") == [], "notebooks are not clean: run `make export`"


def test_readme_is_rendered_from_index():
    sys.path.insert(0, str(ROOT/"tools"))
    from render_readme import render
    assert (ROOT/"README.md").read_text(encoding="utf-8") == render(), "README.md is out of date: run `make readme`"


@pytest.mark.parametrize("nb", WORKSHOPS, ids=[p.name for p in WORKSHOPS])
def test_workshop_notebook_runs(nb):
    # a user's Jupyter runs it top to bottom; a failing cell exits non-zero
    r = subprocess.run([BIN/"jupyter", "execute", "--timeout=600", str(nb)], cwd=nb.parent,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]



def test_docs_processing(tmp_path):
    """`nbdev-proc-nbs`, the first step of `nbdev-docs`, on a scratch copy: every notebook's exported, import and `#| exec_doc`
    cells run in a fresh kernel from the repository root, as the docs build runs them. It needs no Quarto (a stub on PATH
    fails loudly if asked); `nbdev-docs` then renders `_proc/` with Quarto where it is installed."""
    tmp = _scratch_copy(tmp_path/"repo")
    stub = tmp_path/"bin"; stub.mkdir(); (stub/"quarto").write_text("#!/bin/sh\necho 'stub quarto: not installed' >&2; exit 1\n")
    (stub/"quarto").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(tmp)}
    r = subprocess.run([BIN/"nbdev-proc-nbs", "--n-workers", "1"], cwd=tmp, env=env, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "Found cells containing imports and other code" not in out, out[-6000:]
    assert {p.name for p in (tmp/"_proc").glob("*.ipynb")} == {p.name for p in NBS}
    # the pages show what a reader needs to see: `#| exec_doc` cells run during the build and keep their outputs
    cells = json.loads((tmp/"_proc"/"02a_evaluate.ipynb").read_text())["cells"]
    plot = [c for c in cells if "\nfig = plot_losses(" in "".join(c.get("source", ""))]
    assert plot and any("image/png" in o.get("data", {}) for o in plot[0]["outputs"]), plot
