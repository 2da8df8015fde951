# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`. 0 (in the pytest process) by default: on two cores the suite is CPU-bound
# (its studies start Ray workers of their own), so two workers were no faster (865 s against 904 s serial) and
# tripled the longest test's time. On a bigger machine, e.g. TEST_WORKERS=4: a file's tests stay on one worker
# (its module fixtures run once), and files are handed out in collection order (tests/conftest.py collects the
# longest first).
TEST_WORKERS ?= 0

.PHONY: setup data demo test test-slow test-min-versions ui-test-deps lint clean-runs

setup: $(STAMP)

# constraints.txt pins the known-good set (torch 2.14.1 + torchvision 0.29.1: the CPU-only torch wheel has
# no working torchvision); pyproject.toml itself only states lower bounds.
# uv (installed into the venv by pip) downloads and installs the ~6.5 GB of wheels in parallel; where it
# cannot (no uv wheel for the platform, an index only pip.conf names), pip does it. USE_UV=0 forces pip.
# COMPILE_BYTECODE=1 writes the installed packages' .pyc files at install time (~40 s on two cores). It is the
# default where Python may not write them at run time (PYTHONDONTWRITEBYTECODE set, as on this machine): without
# them every process (each CLI call, each Ray worker) compiles torch, Ray, MLflow and pandas from source again,
# ~10 s a process (BENCHMARKS.md §19). Elsewhere Python caches what it imports on first use, which costs less.
USE_UV ?= 1
COMPILE_BYTECODE ?= $(if $(PYTHONDONTWRITEBYTECODE),1,0)
UV_COMPILE := $(if $(filter 1,$(COMPILE_BYTECODE)),--compile-bytecode,)
PIP_COMPILE := $(if $(filter 1,$(COMPILE_BYTECODE)),,--no-compile)
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ "$(USE_UV)" = 1 ] && $(PY) -m pip install -q uv && \
	    $(VENV)/bin/uv pip install --python $(PY) -q $(UV_COMPILE) -c constraints.txt -e '.[dev]'; then \
	  echo "installed with uv"; \
	else \
	  echo "installing with pip"; \
	  $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q $(PIP_COMPILE) -c constraints.txt -e '.[dev]'; \
	fi
	touch $(STAMP)

data:
	@if ls $(FASHION_MNIST_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
	  echo "Fashion-MNIST: $(FASHION_MNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null); \
	else \
	  echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' or set SMOOTHSTUDY_FASHION_MNIST_DIR"; exit 1; \
	fi

demo: setup data
	$(VENV)/bin/smoothstudy run quick --force

test: setup data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The default suite at the lowest Ray, Optuna and MLflow that pyproject.toml allows, in a venv of its own
# (.venv-min): those three pinned, torch + torchvision as in constraints.txt, the rest as the resolver picks.
# Serial (-p no:xdist). Results: BENCHMARKS.md, "Minimum versions".
MIN_VENV ?= .venv-min
MIN_PINS ?= 'ray[tune]==2.52.0' optuna==4.0.0 mlflow==3.9.0
test-min-versions: data
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q uv
	$(MIN_VENV)/bin/uv pip install --python $(MIN_VENV)/bin/python -q $(UV_COMPILE) -e '.[dev]' $(MIN_PINS) \
	  $$(grep -E '^(torch|torchvision)==' constraints.txt)
	$(MIN_VENV)/bin/python -m pytest -q -p no:xdist $(PYTEST_ARGS)

# The slow tests (two-node cluster, faults, resume after a killed driver, the MLflow UI in a browser).
test-slow: setup data ui-test-deps
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Debian's Chromium + ChromeDriver (no browser download is possible here) and Selenium to drive them.
ui-test-deps: setup
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "Chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q chromium chromium-driver >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null); \
	else \
	  echo "Chromium missing: run 'sudo apt-get install chromium chromium-driver'"; exit 1; \
	fi
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,ui]'

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache  # the layers of ARCHITECTURE.md (tests/test_layers.py runs them too)
