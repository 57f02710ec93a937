# One target per job. Variables: RECIPE=path ARGS="key=value ..." NPROC=<processes> RUNS="dirs"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1
NPROC ?= 1
# One process: plain python; several: torchrun on this machine.
LAUNCH = $(if $(filter 1,$(NPROC)),$(PY),$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC))

.PHONY: install test lint format demo teacher baseline r2kd slkd sokd cqkd bench compare results describe describe-update clean-runs sweep study study-results

install:  ## create .venv and install the project (editable) with its dev tools and extras
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install $(TORCH)
	rm -rf kd_zoo.egg-info  # stale metadata would hide new entry points (methods, bench sections)
	$(VENV)/bin/pip install -e '.[dev,plot,tb,slurm]'

test:  ## the whole test suite (CPU)
	$(PY) -m pytest -q

lint:  ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo:  ## offline: a teacher, then every method's student on `synthetic` (3 seeds), one table
	$(PY) tools/demo.py $(ARGS)

teacher:  ## make teacher RECIPE=tools/recipes/teachers/cifar100/resnet32x4.yaml [NPROC=4]
	$(LAUNCH) tools/train_teacher.py --recipe $(RECIPE) $(ARGS)

baseline:  ## make baseline RECIPE=tools/recipes/kd/cifar100/resnet32x4_resnet8x4.yaml
	$(LAUNCH) tools/train_baseline.py --recipe $(RECIPE) $(ARGS)

r2kd slkd sokd cqkd:  ## make r2kd RECIPE=r2kd/recipes/...
	@test -f $@/train.py || { echo "$@ is not implemented yet (see its README)"; exit 2; }
	$(LAUNCH) -m $@.train --recipe $(RECIPE) $(ARGS)

cqkd-sweep:  ## Fig. 2: make cqkd-sweep [PRESET=cifar10|tiny_imagenet|imagenet] [ARGS="data.subset=5000"]
	$(PY) tools/cqkd_sweep.py $(if $(RECIPE),--recipe $(RECIPE),--preset $(or $(PRESET),cifar10)) $(ARGS)

sweep:  ## make sweep SWEEP=file.yaml [ARGS="--workers 4 --dry-run ..."]
	$(PY) tools/sweep.py $(SWEEP) $(ARGS)

# The CIFAR-10 study (README.md, "Results"): SIZE=cpu (2 CPU cores, 2.5 h) or gpu (one GPU).
SIZE ?= cpu
study:  ## make study [SIZE=cpu|gpu] [ARGS=...]: the real-data CIFAR-10 study, resumable
	DATA_ROOT=$$($(PY) -c "from common.bench.data_pipeline import default_root; print(default_root())") \
	$(PY) tools/sweep.py tools/studies/cifar10/$(SIZE).yaml $(if $(filter cpu,$(SIZE)),--workers 2,--runs-per-gpu 8) $(ARGS)

study-results:  ## make study-results [SIZE=cpu|gpu]: README table, HTML page and figure from the runs
	$(PY) tools/results.py tools/studies/cifar10/runs/$(SIZE) \
	  --expect tools/studies/cifar10/runs/$(SIZE)/expected.json \
	  --readme README.md --marker cifar10-$(SIZE) --markdown tools/studies/cifar10/results_$(SIZE).md \
	  --html tools/studies/cifar10/results_$(SIZE).html --figure tools/studies/cifar10/results_$(SIZE).png \
	  --pair sokd_fitnet=fitnet --pair sokd_crd=crd --pair cqkd=lowres \
	  --title "CIFAR-10 study ($(SIZE) size)"

bench:  ## speed and memory benchmarks (figures in README.md)
	$(PY) tools/bench.py $(ARGS)

compare:  ## make compare RUNS="runs/kd runs/dkd"
	$(PY) tools/compare.py $(RUNS) $(ARGS)

results:  ## make results RUNS="dir ..." [ARGS="--html results.html --readme README.md --marker NAME"]
	$(PY) tools/results.py $(RUNS) $(ARGS)

describe:  ## make describe METHOD=r2kd [ARGS=--markdown]; without METHOD: every method
	$(PY) tools/describe.py $(or $(METHOD),--all) $(ARGS)

describe-update:  ## regenerate the READMEs' options tables from the Options dataclasses
	$(PY) tools/describe.py --update
