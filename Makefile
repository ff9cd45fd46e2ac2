# The two commands of the README. Each sets up what it needs from a fresh machine
# that has only python3 >= 3.11: a virtualenv in .venv, govnet installed into it
# (editable; the build generates the protobuf code from protos/), then the job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUILD_INPUTS := pyproject.toml setup.py $(wildcard protos/govnet/v1/*.proto)

.PHONY: demo test install clean tools

demo: $(VENV)/.installed
	$(BIN)/govnet demo

test: $(VENV)/.installed-test tools
	$(BIN)/python -m pytest

# promtool (Debian's prometheus package) validates the deployment files in ops/deploy.
tools:
	@command -v promtool >/dev/null 2>&1 || apt-get install -y --no-install-recommends prometheus \
	  || { apt-get update && apt-get install -y --no-install-recommends prometheus; }

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
	rm -rf $(VENV) build *.egg-info protos/govnet/v1/*_pb2*.py*
