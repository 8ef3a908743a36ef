# Single entry point of the kit. `make lab` runs it, `make test` tests it.
# Every target installs what it needs (apt and pip) on a fresh Debian 12 machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

# openssl makes the test and lab certificates for Redis over TLS (lab/redis-tls-certs.sh).
# prometheus ships promtool, prometheus-redis-exporter the exporter monitoring/ configures: the tests
# check the rules with both (tests/test_monitoring.py). Debian enables both services where systemd runs.
APT_PACKAGES := redis-server redis-tools prometheus prometheus-redis-exporter openssl
APT_STAMP := .cache/apt.stamp
VENV_STAMP := $(VENV)/.installed

# $(call apt_install,PACKAGES): apt-get install whichever of PACKAGES are missing (lab/lab.mk uses it too).
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

.PHONY: help setup test test-fast clean render lint role-docs
help:
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(APT_STAMP): Makefile
	@mkdir -p .cache
	@$(call apt_install,$(APT_PACKAGES))
	@touch $@

$(VENV_STAMP): requirements/app.txt requirements/controller.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/controller.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

setup: $(APT_STAMP) $(VENV_STAMP) ## install apt packages and the pinned virtualenv

# Test files run in parallel (pytest-xdist), each worker process with its own redis-server and celery
# workers (tests/conftest.py); a file's tests stay together on one worker.
test-fast: setup ## app, config and service-definition tests (real redis + celery, no VMs)
	$(BIN)/python lab/timed_molecule.py suite fast -- $(BIN)/pytest tests --numprocesses=auto --maxprocesses=4 --dist=loadfile

# make builds prerequisites left to right and stops at the first failure: lint runs first.
test: lint test-fast ## everything CI runs: lint, then the tests

-include lab/lab.mk
-include bench/bench.mk

clean:
	rm -rf $(VENV) .cache build dist *.egg-info

render: setup ## re-render systemd/ and deploy/ from the roles' templates (default values)
	$(BIN)/ansible-playbook ansible/render-defaults.yml

role-docs: setup ## re-render ansible/roles/*/README.md from each role's meta/argument_specs.yml
	$(BIN)/python ansible/render_role_docs.py

lint: setup ## ruff, yamllint and ansible-lint (production profile); fails on any finding
	$(BIN)/ruff check .
	$(BIN)/yamllint --strict .
	# The playbooks name the roles celery_kit.deploy.*: its syntax check of molecule/*/converge.yml
	# (which imports ansible/site.yml) finds the checkout's collection here.
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/ansible/collections $(BIN)/ansible-lint
