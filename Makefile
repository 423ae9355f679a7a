# invoke-audit: `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser test lint typecheck unit demo bench soak synth clean mutate

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/node --version
	touch $(STAMP)

# Headless Chromium for the report's browser test (Debian's; the test is skipped, saying so,
# when it cannot be had). Only the tests need it, so `make demo` does not install it.
browser:
	test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "no Debian chromium: the report's browser test will be skipped"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy app.py models lambdas cli emulator stacks tests bench

test: lint typecheck browser
	$(BIN)/python -m pytest -n 2 -m "not soak"

unit: setup
	$(BIN)/python -m pytest -m unit

demo: setup
	$(BIN)/invoke-audit demo

bench: setup
	$(BIN)/python -m bench.run

# Mutation testing of the code that decides and writes (not part of `make test`): see
# bench/mutate.py. MODULES="decide rewrite" limits it to some modules; STOP_AFTER=40 stops
# it after 40 minutes and reports what it measured.
mutate: setup
	$(BIN)/python -m bench.mutate $(if $(MODULES),--modules $(MODULES)) $(if $(STOP_AFTER),--stop-after $(STOP_AFTER))

soak: setup
	$(BIN)/python -m pytest -m soak

synth: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python app.py

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache mutants
