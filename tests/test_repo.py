"""`make test`: every notebook's tests, run by nbdev's own `test_nb` (the function behind `nbdev-test`), one pytest
item per notebook so that the run ends with a count; plus the checks that keep the repository honest: the library is
what the notebooks export, the notebooks are clean, README.md is rendered from nbs/index.ipynb, and the workshop
notebooks in vm/ and aml/ run top to bottom.

Skipped cell flags come from `[tool.nbdev] tst_flags`; `FLAGS="slow"` runs those cells too."""
import os, shutil, subprocess, sys, tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT/"nbs").glob("*.ipynb"))
WORKSHOPS = sorted([*(ROOT/"vm").glob("*.ipynb"), *(ROOT/"aml").glob("*.ipynb")])
BIN = Path(sys.executable).parent

# Offline and isolated: tiny models are built into a fresh cache, nothing is looked up on the hub.
os.environ.setdefault("QWENVL_NB_CACHE", tempfile.mkdtemp(prefix="qwenvl_nb_cache_"))
os.environ["HF_HUB_OFFLINE"] = "1"


def test_there_is_something_to_test():
    names = [p.name for p in NBS]
    assert {"00_data.ipynb", "01_model.ipynb", "02b_train.ipynb", "03_azure.ipynb", "index.ipynb"} <= set(names), names
    assert WORKSHOPS, "no workshop notebooks in vm/ or aml/"


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_notebook(nb):
    from nbdev.config import get_config
    from nbdev.test import test_nb
    skip = set(get_config().tst_flags.split()) - set(os.environ.get("FLAGS", "").split())
    ok, secs = test_nb(nb, skip_flags=list(skip), force_flags=os.environ.get("FLAGS", "").split(), basepath=str(ROOT))
    assert ok, f"{nb.name} failed (its traceback is printed above)"


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
