# `make demo` and `make test` do all set-up on a fresh machine: they create .venv when missing,
# install torch ($(TORCH)) and the package; a second run skips what is installed, except a TORCH
# given explicitly, which is always installed (see the torch target).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean system test-torch-next

# The newest PyTorch the project supports (a CUDA build: its NVIDIA libraries come from PyPI,
# several GB): `make test-torch-next` runs the model, parity and export tests under it in a venv
# of its own, beside the default TORCH of `make test`
TORCH_NEXT ?= torch==2.14.1
VENV_NEXT := .venv-next
NEXT_TESTS := tests/models tests/parity tests/test_export.py

# Debian packages the test suite needs: the web page's test (tests/serve/test_page.py) drives
# Debian's chromium through its chromedriver; installed once, when either command is missing
SYSTEM_PACKAGES := chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e '.[dev]'
	touch $@

# TORCH given on the command line or in the environment (make test TORCH=torch==2.14.1) is
# installed even into an existing .venv: pip changes what differs and leaves the rest alone
ifneq ($(filter command line environment,$(origin TORCH)),)
.PHONY: torch
torch: $(STAMP)
	$(PIP) install --quiet "$(TORCH)"
	$(BIN)/python -c "import torch; print('torch', torch.__version__)"
install demo test lint: torch
endif

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/actionrec demo

system:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -qq && \
	    $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); }

test: $(STAMP) system
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-torch-next:
	$(MAKE) test VENV=$(VENV_NEXT) TORCH=$(TORCH_NEXT) PYTEST_ARGS="$(NEXT_TESTS)"

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(VENV_NEXT) work_dirs
