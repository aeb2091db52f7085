# Two entry points for a fresh machine: `make up` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium
# checkov, the scanner the checkov import test runs, in a venv of its own: its pins
# (cyclonedx-python-lib<8, packaging<24, bc-detect-secrets over detect_secrets) clash with the
# dev extra's scanners
CHECKOV := $(VENV)/tools/checkov/bin/checkov
CHECKOV_SPEC := checkov>=3.2,<4

.PHONY: up test bench clean

$(BIN)/policyscope: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/policyscope

up: $(BIN)/policyscope  ## install, then run collector + dashboard + demo traffic on embedded chDB
	$(BIN)/policyscope up --demo

# two pytest-xdist workers, a test file per worker (the browser tests of one file share one
# running stack): about 16 min against ~26 on one worker
test: $(BIN)/policyscope $(CHROMIUM) $(CHECKOV)  ## install, then run the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile

$(CHECKOV): $(BIN)/policyscope
	$(PYTHON) -m venv $(VENV)/tools/checkov
	$(VENV)/tools/checkov/bin/pip install --quiet '$(CHECKOV_SPEC)'

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work
# on these machines); as root, install it when it is missing.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	else echo "Chromium is missing: install Debian's chromium package for the browser tests" >&2; fi

bench: $(BIN)/policyscope  ## run the benchmarks; results go to bench/RESULTS.md
	$(BIN)/python -m bench.ingest --output bench/RESULTS.md
	$(BIN)/python -m bench.faults --events 2000000 --output bench/RESULTS.md
	$(BIN)/python -m bench.overload --output bench/RESULTS.md
	$(BIN)/python -m bench.redaction --repeat 7 --output bench/RESULTS.md
	$(BIN)/python -m bench.pages --output bench/RESULTS.md

clean:
	rm -rf $(VENV) data
