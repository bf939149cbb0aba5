# liveness: `make demo` runs the main job on the built-in testbed, `make test` runs every check.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all demo test check-tools lint layers typecheck pytest bench clean

all: test

$(STAMP): pyproject.toml scripts/bootstrap.sh scripts/system-tools.txt
	VENV=$(VENV) bash scripts/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/liveness demo

test: check-tools lint layers typecheck pytest

check-tools: $(STAMP)
	bash scripts/check-tools.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

layers: $(STAMP)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b" >&2; $(PY) $$b; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
