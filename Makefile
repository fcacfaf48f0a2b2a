# freqdyn: two commands on a fresh machine.
#   make demo   creates .venv when missing, installs, runs the main job on a default case
#   make test   creates .venv when missing, runs the whole test suite
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
TEST_WORKERS ?= 2

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

demo: $(STAMP)
	$(BIN)/freqdyn validate validation/gaussian-1d.toml --out $(OUT)/demo/gaussian-1d --quiet
	$(BIN)/freqdyn validate validation/uniform-1d.toml --out $(OUT)/demo/uniform-1d --quiet
	@echo "demo: Gaussian vs uniform rho_w, PDE next to trained networks (CI size);"
	@echo "      full size: add --full (docs/guide.md)"

lint: $(STAMP)
	$(BIN)/ruff check freqdyn tests benchmarks
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(OUT) .pytest_cache
