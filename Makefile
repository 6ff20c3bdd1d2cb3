# The README's two commands: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := .stratum/demo
DEMO_ADDRESSES ?= 20000
export PYTHONHASHSEED := 0

.PHONY: venv test test-fast lint typecheck demo bench clean

venv: $(STAMP)

# constraints.txt is the resolved, tested set (pip freeze of a working install).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/stratum generate --out $(DEMO)/sources --truth $(DEMO)/truth.parquet --addresses $(DEMO_ADDRESSES) --seed 7
	$(BIN)/stratum validate $(DEMO)/sources
	$(BIN)/stratum features --sources $(DEMO)/sources --as-of $$(date +%F) --out $(DEMO)/features.parquet

bench: $(STAMP)
	$(BIN)/python bench/features.py

clean:
	rm -rf $(VENV) .stratum .pytest_cache .mypy_cache .ruff_cache
