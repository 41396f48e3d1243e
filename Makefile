# Two commands on a fresh machine: `make run` and `make test`. Each sets up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# uv installs the locked stack in seconds (plain pip takes minutes); bootstrapped with pip when missing.
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test ui evaluate benchmark clean

run: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/listening-anomalies run $(ARGS)

test: $(VENV)/.installed-with-spark
	$(BIN)/pytest $(ARGS)

ui: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/listening-anomalies ui $(ARGS)

# Detection quality over three seeds of each simulation profile, written into README.md between its markers.
evaluate: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/listening-anomalies evaluate --readme README.md $(ARGS)
	$(BIN)/listening-anomalies evaluate --profile gentle --readme README.md $(ARGS)

benchmark: $(VENV)/.installed
	$(BIN)/python -m benchmarks.run $(ARGS)

# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on the machines measured), every process
# (each `run`, each dbt call) would compile Dagster's and dbt's sources again, seconds each time.
$(VENV)/.installed: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode --python python3
	touch $@

# The tests also build the dbt models on Spark: the spark dependency group on top of the rest.
$(VENV)/.installed-with-spark: $(VENV)/.installed
	$(UV) sync --frozen --compile-bytecode --python python3 --group spark
	touch $@

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\nnux:\n  enabled: false\n' > $@

clean:
	rm -rf $(VENV) .tools .dagster_home dbt_project/target dbt_project/logs
