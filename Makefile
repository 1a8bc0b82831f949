# Entry points: `make demo`, `make test` and `make integration` (the live stack, docs/deploy.md).
# Each builds .venv from uv.lock when missing.
PYTHON ?= python3.11
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)
# one worker a core (tests/conftest.py hands each worker whole modules); the slowest tests listed
UNIT := $(VENV)/bin/pytest -q -n auto --durations=20

.PHONY: demo test lint typecheck unit integration bench clean

demo: $(SYNCED)
	$(VENV)/bin/claims-audit demo

# mypy checks on one core while the tests run on both: the tests keep both cores busy but for
# their first and last seconds, which mypy (about 20 s on a fresh clone) fills. Its verdict is
# printed after the tests' and fails `make test` as `make typecheck` would.
test: lint $(SYNCED)
	@echo "$(VENV)/bin/mypy & $(UNIT)"; \
	typecheck=$$(mktemp); $(VENV)/bin/mypy >$$typecheck 2>&1 & mypy=$$!; \
	$(UNIT); tests=$$?; \
	wait $$mypy; typed=$$?; cat $$typecheck; rm -f $$typecheck; \
	test $$tests -eq 0 && test $$typed -eq 0

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(SYNCED)
	$(VENV)/bin/mypy

unit: $(SYNCED)
	$(UNIT)

# the compose stack's topology live, without Docker (integration/, docs/deploy.md)
integration: $(SYNCED)
	$(VENV)/bin/python -m integration

bench: $(SYNCED)
	$(VENV)/bin/python bench/run_bench.py

# uv itself comes from PyPI into a private folder, so nothing global is needed but Python 3.11
$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml | $(UV)
	rm -f $(VENV)/.synced-*
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

clean:
	rm -rf $(VENV) .uv demo .pytest_cache .mypy_cache .ruff_cache
