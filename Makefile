# Two commands on a fresh machine: `make demo` (main job, offline) and `make test` (everything CI runs).
# Each target does its own set-up: a local venv and the pinned aws-cdk v2 CLI from npm.
SHELL := /bin/bash
# Any Python >= 3.11 on PATH (the first of python3.11, python3.12, python3.13, python3 that is one);
# `make PY=/path/to/python` overrides.
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
PY ?= $(shell for p in $(PYTHON_CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true
# Offline synth/tests never need credentials; a dummy region keeps boto3 quiet where nothing is configured.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup demo test lint typecheck pytest synth bench clean python local

NEED_PY = @test -n "$(PY)" || { echo "error: no Python >= 3.11 found (tried $(PYTHON_CANDIDATES));" \
	"install one or run make PY=/path/to/python3.11" >&2; exit 1; }

python:  # which Python the venv is (or would be) built with
	$(NEED_PY)
	@echo "using $(PY): $$($(PY) -c 'import sys; print(sys.version.split()[0])')"

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(NEED_PY)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(CDK): package.json
	npm install --no-audit --no-fund --silent
	touch $@

setup: $(BIN)/.installed $(CDK)

demo: $(BIN)/.installed
	$(BIN)/killswitch demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest -n 2

synth: setup
	rm -rf cdk.out
	$(CDK) synth --no-notices --quiet > /dev/null
	$(BIN)/killswitch validate killswitch.yaml scp_policies iam_policies
	$(BIN)/cfn-lint cdk.out/*.template.json
	@echo "cdk synth OK: $$(ls cdk.out/*.template.json | xargs -n1 basename | tr '\n' ' ')"

test: setup lint typecheck pytest synth

local: $(BIN)/.installed
	$(BIN)/killswitch local

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .ruff_cache
