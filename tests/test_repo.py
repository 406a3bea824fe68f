"""`make test`: every notebook's tests, each run by the card's own command (`nbdev-test NOTEBOOK`), one pytest item per
notebook so that the run ends with a count; plus the checks that keep the repository honest: the library is what the
notebooks export, the notebooks are clean, README.md is rendered from nbs/index.ipynb, the workshop notebooks in vm/
and aml/ run top to bottom, and nothing was written into HOME.

Skipped cell flags come from `[tool.nbdev] tst_flags`; `FLAGS="slow"` runs those cells too. The sandbox (temporary HOME,
tiny-model cache, offline hub) is set in conftest.py."""
import os, shutil, subprocess, sys
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
    r = subprocess.run([BIN/"nbdev-test", str(nb.relative_to(ROOT)), "--flags", flags, "--do-print"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Success." in r.stdout + r.stderr, f"{nb.name} failed:\n{r.stdout[-3000:]}{r.stderr[-6000:]}"


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

