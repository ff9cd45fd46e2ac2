# The two commands of the README. Each sets up what it needs from a fresh machine
# that has only python3 >= 3.11: a virtualenv in .venv, govnet installed into it
# (editable; the build generates the protobuf code from protos/), then the job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_INPUTS := pyproject.toml setup.py $(wildcard protos/govnet/v1/*.proto)

.PHONY: demo test quick lint lint-tree install clean tools browser

demo: $(VENV)/.installed
	$(BIN)/govnet demo

# Two workers, a test file each at a time: the real-process tests mostly wait on fsync and
# sockets, so two share the two cores well (every test has its own directory and ports).
# Files in the order tests/conftest.py gives (the longest first), not xdist's (most tests
# first), so both workers finish together. Bytecode is written even where the environment
# says not to: every test spawns `govnet` processes, and each would compile govnet's
# modules (and the migrations) from source again.
test: $(VENV)/.installed-test tools browser lint
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# The pure-core tests and the lint, in under a minute.
quick: $(VENV)/.installed-test lint
	$(BIN)/python -m pytest -q tests/unit

# ruff; mypy (strict for the pure cores); the import contracts (floors, and generated code
# only at the edges). mypy and import-linter read the package as it installs, laid out under
# build/lint as links to the real files (the editable install's import hook is invisible to them).
LINT_TREE := build/lint/govnet
lint: $(VENV)/.installed-test lint-tree
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=build/lint $(BIN)/lint-imports

lint-tree:
	rm -rf build/lint
	mkdir -p $(LINT_TREE)
	cp -s $(CURDIR)/protos/govnet/__init__.py $(LINT_TREE)/
	cp -rs $(CURDIR)/protos/govnet/v1 $(LINT_TREE)/v1
	for d in node sync federation ops; do cp -rs $(CURDIR)/$$d $(LINT_TREE)/$$d; done
	find build/lint -name __pycache__ -prune -exec rm -rf {} +

# promtool (Debian's prometheus package) validates the deployment files in ops/deploy.
tools:
	@command -v promtool >/dev/null 2>&1 || apt-get install -y --no-install-recommends prometheus \
	  || { apt-get update && apt-get install -y --no-install-recommends prometheus; }

# The console's browser tests: Debian's chromium (driven by the pinned playwright, pointed at
# /usr/bin/chromium; playwright never downloads a browser of its own) and CJK fonts, so the
# screenshots show Chinese, not boxes.
browser:
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 \
	  || apt-get install -y --no-install-recommends chromium fonts-noto-cjk \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium fonts-noto-cjk; }

install: $(VENV)/.installed

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "govnet needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python $(BUILD_INPUTS)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/python $(BUILD_INPUTS)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info protos/govnet/v1/*_pb2*.py* protos/govnet/v1/descriptors.binpb
