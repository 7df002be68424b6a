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

# From Debian when missing: etcd (storage backend tests), kubectl (compatibility tests), and
# the node agent's runtimes: Podman with runc (containers; crun fails on some hosts), QEMU
# (VMs), busybox-static (the offline images), genisoimage (cloud-init seeds); iptables
# (netavark's bridge networks) and catatonit (Podman's local pause image: no registry);
# Debian's cloud kernel and iproute2 for the tinyvm test image and the VM bridge.
system-deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v kubectl >/dev/null || missing="$$missing kubernetes-client"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	command -v iptables >/dev/null || missing="$$missing iptables"; \
	[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || missing="$$missing catatonit"; \
	command -v netavark >/dev/null || [ -x /usr/lib/podman/netavark ] || missing="$$missing netavark"; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	command -v qemu-img >/dev/null || missing="$$missing qemu-utils"; \
	[ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	command -v genisoimage >/dev/null || missing="$$missing genisoimage"; \
	command -v cpio >/dev/null || missing="$$missing cpio"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || missing="$$missing linux-image-cloud-amd64"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && $(APT) $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

up: $(STAMP) system-deps
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
