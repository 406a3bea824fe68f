# The README's two commands: `make demo` and `make test`. Both create .venv and install on a fresh machine.
# torch is installed first, from TORCH, so that no other package pulls a different build; on a GPU machine pick
# the build for your driver, e.g. make test TORCH="torch==2.8.0 torchvision==0.23.0 --index-url https://download.pytorch.org/whl/cu126"
PYTHON ?= python3
TORCH ?= torch==2.14.1 torchvision==0.29.1
VENV := .venv
BIN := $(VENV)/bin
FLAGS ?=
DEMO_OUT ?= outputs/demo
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test lab docs bench install export readme clean

# Re-install when the project's dependencies change; the stamp records what was installed.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev,qlora,azure,notebook]"
	$(BIN)/python -c "import torch, torchvision, transformers, peft; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__)"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/qwenvl-train --model-name tiny-qwen2.5-vl --dataset-dir dataset --train-file train.jsonl \
	  --validation-file validation.jsonl --output-dir $(DEMO_OUT) --per-device-train-batch-size 4 \
	  --gradient-accumulation-steps 1 --num-train-epochs 10 --learning-rate 5e-3 --report-to none \
	  --bf16 --save-strategy epoch --eval-strategy epoch --resume-from-checkpoint auto  # a second make demo keeps the finished run
	$(BIN)/python -c "from qwenvl_nb.train import preview_answers; preview_answers('$(DEMO_OUT)', 'dataset', 'validation.jsonl', n=5)"

# Each notebook runs through `nbdev-test` (one pytest item each), two at a time on two cores (one thread each).
WORKERS ?= 2
test: install
	FLAGS="$(FLAGS)" OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) tests

# Jupyter Lab in the repository, on the chapters (nbs/) and workshops (vm/, aml/)
lab: install
	$(BIN)/jupyter lab --notebook-dir=. nbs/index.ipynb

# The docs site: nbdev-docs processes the notebooks and Quarto renders them into _docs/ (needs Quarto, quarto.org;
# the docs workflow installs it on GitHub). `make test` runs the processing step, which needs no Quarto.
docs: install
	$(BIN)/nbdev-docs

bench: install
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/data_bench.py
	$(BIN)/python bench/data_bench.py --size small
	$(BIN)/python bench/memory_bench.py
	$(BIN)/python bench/trl_bench.py
	$(BIN)/python bench/trl_bench.py --size tiny
	$(BIN)/python bench/scale_bench.py --workload vqa --samples 96 --batch-size 4 --runs ours,ours-packed,ours-standard-loss,trl
	$(BIN)/python bench/scale_bench.py --workload long --samples 8 --batch-size 1 --runs ours,ours-standard-loss,trl
	$(BIN)/python bench/loss_bench.py
	$(BIN)/python bench/preflight_calibration.py

export: install
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-clean --fname vm
	$(BIN)/nbdev-clean --fname aml
	$(BIN)/nbdev-export
	$(BIN)/python tools/render_readme.py

readme: install
	$(BIN)/python tools/render_readme.py

clean:
	rm -rf $(VENV) outputs
