# dvr-agent: `make demo`, `make test` and `make bench` work on a fresh Debian 12 / Ubuntu
# machine, as root.
SHELL := /bin/bash
VENV := .venv
PIP := $(VENV)/bin/pip
INSTALLED := $(VENV)/.installed

.PHONY: setup system-packages venv demo test lint unit functional lab bench bench-quick clean

setup: system-packages venv

system-packages:
	@tools/install-system-packages.sh

venv: $(INSTALLED)

$(INSTALLED): setup.cfg pyproject.toml
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@$(PIP) install -q -e '.[test]' tox
	@touch $@

demo: setup
	@if [ -x $(VENV)/bin/dvr-lab ]; then $(VENV)/bin/dvr-lab demo; \
	else echo "make demo: not yet - the multi-host lab lands with the lab issue"; fi

test: setup
	$(VENV)/bin/tox run -e all

lint unit functional lab: setup
	$(VENV)/bin/tox run -e $@

# benchmarks/README.md: the standard set (< 20 min) writes benchmarks/results/latest.json
bench: setup
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python -m benchmarks.run

bench-quick: setup
	$(VENV)/bin/python tests/isolated.py $(VENV)/bin/python -m benchmarks.run --quick \
		--output benchmarks/results/quick.json

clean:
	rm -rf .tox build dist *.egg-info
