# Two commands: `make up` runs the cluster, `make test` runs every test.
# Both set themselves up: a virtualenv in .venv, pip packages, and (as root) Debian packages.

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
APT    := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
PYTEST_WORKERS ?= 2

.PHONY: up test lint typecheck unit docs bench-api system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $(STAMP)

# etcd (storage backend tests) and kubectl (compatibility tests) from Debian when missing.
system-deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && $(APT) $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

up: $(STAMP)
	$(BIN)/arktos up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not quiet"
	$(BIN)/pytest -q -m quiet  # latency measurements: alone on the machine

docs: $(STAMP)
	$(BIN)/pip install -q -e '.[docs]'
	$(BIN)/mkdocs build --strict

bench-api: $(STAMP)
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .arktos site .pytest_cache .mypy_cache .ruff_cache
