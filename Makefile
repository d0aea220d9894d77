# hybrid-onboard — the two commands a newcomer needs are `make demo` and `make test`.
# Every target installs what it needs first; a second run with nothing to do takes seconds.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := install

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
HOSTS ?= 3
# Debian packages the lab and the tests need (the controller itself needs only Python).
APT_PACKAGES := debootstrap systemd-container iproute2 dnsutils openssl gnupg dpkg-dev curl ca-certificates chromium
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_INJECT_FACT_VARS := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install apt venv lint unit lab-tests integration integration-lab integration-aws molecule molecule-aws \
	molecule-hosts test test-aws test-lab demo lab-up lab-down clean readme

install: venv apt

venv: $(VENV)/.installed

# Rebuilt only when requirements.txt changes.
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "apt: need root to install: $$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(PY) scripts/role_specs.py check
	$(PY) scripts/unused
	$(BIN)/ansible-playbook --syntax-check -i inventory/lab playbooks/site.yml
	$(BIN)/ansible-lint --offline --profile production
# ansible-test sanity (validate-modules, import, pylint, pep8, ...) on a copy of the collection, Python 3.11 only;
# its test virtualenvs are cached under ~/.ansible/test, so only the first run downloads them.
	VENV=$(VENV) scripts/sanity

readme: venv
	$(PY) scripts/role_specs.py readme

unit: venv
	$(BIN)/pytest tests/unit -m "not lab" --durations=10

# Tests that build parts of the lab themselves (root: namespaces, booted hosts).
lab-tests: install
	$(BIN)/pytest tests/unit -m lab

# Integration tests: the lab's (one lab for all of them, `lab_hosts`) and the AWS-only ones (in-process emulators).
integration: integration-lab integration-aws

integration-lab: install
	$(BIN)/pytest tests/integration -m lab_hosts --durations=15

integration-aws: install
	$(BIN)/pytest tests/integration -m "not lab_hosts" --durations=10

molecule: install
	scripts/run-molecule

molecule-aws: install
	HYBRID_MOLECULE_KIND=aws scripts/run-molecule

molecule-hosts: install
	HYBRID_MOLECULE_KIND=hosts scripts/run-molecule

# Everything, in two streams side by side (scripts/run-parallel): they share no emulator, port or lab. Lint runs
# in the aws stream, the shorter one. (Lowering that stream's priority with nice did not shorten the lab stream,
# measured: the lab's hosts run in their own cgroups, which nice does not reach.)
test: install
	scripts/run-parallel "aws=$(MAKE) --no-print-directory lint test-aws" \
	  "lab=$(MAKE) --no-print-directory test-lab"

test-aws: unit integration-aws molecule-aws

test-lab: lab-tests integration-lab molecule-hosts

lab-up: install
	scripts/lab up --hosts $(HOSTS)

lab-down:
	scripts/lab down

demo: install
	scripts/demo --hosts $(HOSTS)

clean: lab-down
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache
