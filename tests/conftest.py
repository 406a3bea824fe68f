"""The test session's sandbox: a temporary HOME that must stay empty (nothing the library or its notebooks do may write
into a user's home), a fresh tiny-model cache, no hub access. Made once by the controlling pytest process and inherited
by its workers and by every notebook and subprocess the tests start; checked when the session ends."""
import os, tempfile
from pathlib import Path

SANDBOX = Path(os.environ.get("QWENVL_NB_TEST_SANDBOX") or tempfile.mkdtemp(prefix="qwenvl_nb_tests_"))
HOME = SANDBOX/"home"; HOME.mkdir(exist_ok=True)
os.environ["QWENVL_NB_TEST_SANDBOX"] = str(SANDBOX)  # pytest-xdist workers start after this and share the sandbox
# the harness's own tools (IPython kernels, matplotlib's font cache, Jupyter) keep their state in the sandbox too
for var, sub in [("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "matplotlib"), ("JUPYTER_CONFIG_DIR", "jupyter/config"),
                 ("JUPYTER_DATA_DIR", "jupyter/data"), ("JUPYTER_RUNTIME_DIR", "jupyter/runtime")]:
    os.environ[var] = str(SANDBOX/sub)
os.environ.update(HOME=str(HOME), QWENVL_NB_CACHE=str(SANDBOX/"cache"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"): return  # only the controlling process judges
    written = sorted(str(p.relative_to(HOME)) for p in HOME.rglob("*"))
    if written:
        print(f"\nFAILED: the tests wrote into HOME ({HOME}): {written[:20]}")
        session.exitstatus = 1
