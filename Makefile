# Two commands on a fresh machine with Python 3.11+:
#   make demo   - set up .venv and open the demo desk (SQLite + demo data)
#   make test   - set up .venv and run the whole test suite (what .ci/run calls)

PYTHON ?= python3
# Test processes: one file stays in one worker (module fixtures are built once); WORKERS=0 runs in-process.
WORKERS ?= 2
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "termdesk needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and run make again.")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/termdesk demo $(ARGS)

test: $(STAMP)
	@.ci/install-servers
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(WORKERS) --dist loadfile $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/scale.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
