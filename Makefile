# The README's two commands: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := .stratum/demo
DEMO_ADDRESSES ?= 60000
DEMO_AS_OF ?= 2026-11-01
DEMO_PORT ?= 3000
DEMO_RISK_NOTE := demo on a generated municipality only: the refusal above is part of the demo; \
never accept a failed fairness gate for real visits without a DPIA and the DPO's sign-off
export PYTHONHASHSEED := 0

.PHONY: venv test test-all-in-one test-fast lint typecheck demo demo-keys bench clean postgresql chromium

venv: $(STAMP)

# constraints.txt is the resolved, tested set (pip freeze of a working install).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The store tests start a real PostgreSQL server from the Debian package: install it when
# missing, and fail (never skip) when that is not possible.
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || \
	  { echo "PostgreSQL server not found: installing the Debian package postgresql"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } || \
	  { echo "error: cannot install PostgreSQL (apt-get install -y postgresql, as root);" \
	         "the store tests need it" >&2; exit 1; }

# The web app's browser tests drive Chromium from the Debian package: install it when
# missing, and fail (never skip) when that is not possible.
chromium:
	@test -x /usr/bin/chromium || \
	  { echo "Chromium not found: installing the Debian package chromium"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  { echo "error: cannot install Chromium (apt-get install -y chromium, as root);" \
	         "the web app's browser tests need it" >&2; exit 1; }

# Two cores: the type check and the slow end-to-end tests run beside the fast tests (each
# pytest session in a temp folder of its own); the target fails when any of the three fails.
TESTRUN := .pytest-run
test: $(STAMP) postgresql chromium
	$(BIN)/ruff check src tests bench
	@rm -rf $(TESTRUN) && mkdir -p $(TESTRUN)
	@echo "mypy, the slow tests (-m slow) and the fast tests run side by side"
	@$(BIN)/mypy > $(TESTRUN)/mypy.log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -q -m slow -p no:cacheprovider --basetemp=$(TESTRUN)/slow \
	  > $(TESTRUN)/slow.log 2>&1 & slow=$$!; \
	$(BIN)/python -m pytest -q -m "not slow" --basetemp=$(TESTRUN)/fast; fast_rc=$$?; \
	wait $$slow; slow_rc=$$?; wait $$types; types_rc=$$?; \
	echo "== slow tests (-m slow)"; cat $(TESTRUN)/slow.log; \
	echo "== mypy"; cat $(TESTRUN)/mypy.log; \
	test $$fast_rc -eq 0 && test $$slow_rc -eq 0 && test $$types_rc -eq 0

test-all-in-one: $(STAMP) postgresql chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) postgresql
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The demo: a generated municipality as raw extracts (BSNs, family names, KvK numbers),
# pseudonymised by the data steward with a key kept outside the source folder, then
# trained, checked against its truth, promoted, scored and served.
# DEMO_AS_OF is the generator's extract date (the day of the export).
demo: $(STAMP)
	rm -rf $(DEMO)/sources $(DEMO)/generated $(DEMO)/raw $(DEMO)/truth.parquet $(DEMO)/steward
	$(BIN)/stratum generate --out $(DEMO)/generated --truth $(DEMO)/truth.parquet \
		--addresses $(DEMO_ADDRESSES) --seed 7 --raw-out $(DEMO)/raw
	rm -rf $(DEMO)/generated
	$(BIN)/stratum keys pseudonym create --out $(DEMO)/steward/pseudonym.key
	$(BIN)/stratum pseudonymise --raw $(DEMO)/raw --mapping examples/mapping.yaml \
		--out $(DEMO)/sources --key-file $(DEMO)/steward/pseudonym.key
	$(BIN)/stratum validate $(DEMO)/sources
	$(BIN)/stratum train --sources $(DEMO)/sources
	$(BIN)/stratum evaluate --sources $(DEMO)/sources --truth $(DEMO)/truth.parquet
	@# The gate may refuse this town's model (see the reasons it prints). The demo then shows
	@# the accountable way past it: a written, recorded acceptance of the risk.
	@# The documentation pack reviewed before the decision; promote records its hash.
	$(BIN)/stratum docs --model challenger --out $(DEMO)/docs-review \
		--organisation examples/organisation.yaml
	$(BIN)/stratum promote || $(BIN)/stratum promote --accept-fairness-risk "$(DEMO_RISK_NOTE)"
	$(BIN)/stratum docs --model champion --out $(DEMO)/docs --organisation examples/organisation.yaml
	$(BIN)/stratum docs --check $(DEMO)/docs
	$(BIN)/stratum score --sources $(DEMO)/sources --as-of $(DEMO_AS_OF) --top 100 \
		--out $(DEMO)/priority_list.csv
	@# A stored run with a visit plan: 250 visits, 10% of them drawn by design (exploration).
	$(BIN)/stratum run --sources $(DEMO)/sources --as-of $(DEMO_AS_OF) --capacity 250
	@$(MAKE) --no-print-directory demo-keys
	$(BIN)/stratum serve --sources $(DEMO)/sources --as-of $(DEMO_AS_OF) --port $(DEMO_PORT)

# One key per role (shown once), and an example call with the analyst key.
demo-keys: $(STAMP)
	@keys="$$($(BIN)/stratum keys demo)" && echo "$$keys" && \
	analyst="$$(echo "$$keys" | sed -n 's/^analyst: //p')" && \
	echo "" && echo "Once the service below says it is ready, try (demo analyst key):" && \
	echo "  curl -s -X POST http://127.0.0.1:$(DEMO_PORT)/priority_list \\" && \
	echo "    -H 'Content-Type: application/json' -H 'Authorization: Bearer '$$analyst \\" && \
	echo "    -d '{\"k\": 10, \"language\": \"nl\"}'" && echo "" && \
	echo "The web app: http://127.0.0.1:$(DEMO_PORT)/app/ (log in with one of the keys above):" && \
	echo "$$keys" | sed -n 's/^\([a-z_]*\): \(stk_.*\)$$/  \1: open the app, paste \2/p' && echo ""

bench: $(STAMP)
	$(BIN)/python bench/features.py
	$(BIN)/python bench/train_score.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .stratum .pytest_cache .mypy_cache .ruff_cache
