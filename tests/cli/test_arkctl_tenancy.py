"""Tenants with `arkctl`: create a tenant and its namespace, work in it with -E/--tenant or
a context's tenant, and list across tenants with -T."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.apiserver_proc import ApiServerProcess
from tests.cli import Arkctl, table, unique


@pytest.fixture
def ark(apiserver: ApiServerProcess) -> Arkctl:
    return Arkctl(apiserver.kubeconfig)


def test_tenant_objects_are_isolated_and_listed_across_tenants(ark: Arkctl,
                                                                tmp_path: Path) -> None:
    tenant, ns = unique("t1"), unique("sys")
    assert ark.ok_many(("create", "tenant", tenant, "--storage-cluster", "3"),
                       ("create", "namespace", ns)) == [f"tenant/{tenant} created\n",
                                                        f"namespace/{ns} created\n"]
    # No tenant controller runs here: the tenant's default namespace is created by hand.
    assert ark.ok("create", "namespace", "default", "--tenant", tenant) == \
        "namespace/default created\n"
    ark.ok_many(("-E", tenant, "create", "deployment", "tw", "--image=busybox"),
                ("-n", ns, "create", "deployment", "sw", "--image=busybox"))
    mine, theirs, across, tenants, missing = ark.many(
        ("get", "deploy", "-E", tenant, "-o", "name"), ("get", "deploy", "-n", ns, "-o", "name"),
        ("get", "deploy", "-T"), ("get", "tenants"), ("get", "deploy", "tw"))
    assert mine.stdout == "deployment.apps/tw\n" and theirs.stdout == "deployment.apps/sw\n"
    rows = table(across.stdout)
    assert rows[0][:4] == ["TENANT", "NAMESPACE", "NAME", "READY"]
    assert [tenant, "default", "tw"] in [r[:3] for r in rows]
    assert ["system", ns, "sw"] in [r[:3] for r in rows]
    assert [tenant, "3", "Active"] in [r[:3] for r in table(tenants.stdout)]
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    # A context whose tenant is the new tenant sees its objects without -E.
    config = tmp_path / "config"
    shutil.copy(ark.kubeconfig, config)
    own = Arkctl(config)
    context = yaml.safe_load(config.read_text())["current-context"]
    assert own.ok("config", "set-context", "--current", f"--tenant={tenant}") == \
        f'Context "{context}" modified.\n'
    assert own.ok("get", "deploy", "-o", "name") == "deployment.apps/tw\n"
