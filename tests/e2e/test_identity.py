"""Identity and isolation over HTTPS: anonymous and bad credentials get 401; tenant users
(by certificate and by token) work in their own tenant and get 403 everywhere else."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Scope
from tests.apiserver_proc import CREDENTIALS, ApiServerProcess, ComponentProcess
from tests.e2e.rest import Rest, configmap

TOKENS = 'tok-acme,admin,u-1,,,acme\ntok-beta,admin,u-2,,,beta\n'


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """A server with a token file, a controller manager, and tenants acme and beta."""
    data = Path(tmp_path_factory.mktemp("identity"))
    (data / "tokens.csv").write_text(TOKENS)
    server = ApiServerProcess(data, extra_args=("--token-auth-file",
                                                str(data / "tokens.csv"))).start()
    cm = ComponentProcess("cm", ["controller-manager", "--kubeconfig", str(server.kubeconfig),
                                 "--no-leader-elect"], data).start()
    admin = Rest(server.url)
    for tenant in ("acme", "beta"):
        admin.ok(admin.post("/api/v1/tenants", {"metadata": {"name": tenant}, "spec": {}}))
    for tenant in ("acme", "beta"):
        _wait(lambda t=tenant: "default" in admin.names(f"/api/v1/tenants/{t}/namespaces")
              and "admin-role-binding" in admin.names(
                  f"/apis/rbac.authorization.k8s.io/v1/tenants/{t}/clusterrolebindings"))
    yield server
    cm.stop()
    server.stop()


def _wait(check: Any, tries: int = 100) -> None:
    for _ in range(tries):
        if check():
            return
        threading.Event().wait(0.1)
    raise AssertionError("timed out")


def token_session(server: ApiServerProcess, token: str) -> Rest:
    rest = Rest(server.url, anonymous=True)
    rest.http.headers["Authorization"] = f"Bearer {token}"
    return rest


def cert_session(server: ApiServerProcess, tmp_path: Path, user: str, tenant: str,
                 groups: tuple[str, ...] = ()) -> Rest:
    out = tmp_path / f"{tenant}-{user}.kubeconfig"
    subprocess.run([sys.executable, "-m", "arktos.cli.main", "certs", "issue", "--data-dir",
                    str(server.data_dir), "--user", user, "--tenant", tenant, "--kubeconfig",
                    str(out), "--server", server.url,
                    *(arg for g in groups for arg in ("--group", g))],
                   check=True, capture_output=True)
    pem = tmp_path / f"{tenant}-{user}.pem"
    cfg = yaml.safe_load(out.read_text())["users"][0]["user"]
    pem.write_bytes(base64.b64decode(cfg["client-certificate-data"]) +
                    base64.b64decode(cfg["client-key-data"]))
    rest = Rest(server.url, anonymous=True)
    rest.http.cert = str(pem)
    return rest


def test_anonymous_and_bad_credentials_are_401(secured: ApiServerProcess) -> None:
    anonymous = Rest(secured.url, anonymous=True)
    assert anonymous.get("/readyz").status_code == 200
    assert anonymous.get("/version").status_code == 200
    for path in ("/api/v1/namespaces", "/api", "/apis", "/api/v1/nodes"):
        resp = anonymous.get(path)
        assert resp.status_code == 401 and resp.json()["reason"] == "Unauthorized", path
    assert token_session(secured, "nope").get("/api/v1/namespaces").status_code == 401
    forged = ("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJhcmt0b3MiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFj"
              "Y291bnQ6ZGVmYXVsdDp4In0.c2lnbmF0dXJl")
    assert token_session(secured, forged).get("/api/v1/namespaces").status_code == 401
    ca, _ = CREDENTIALS[secured.url]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(secured.url + "/api", verify=False, cert=(ca, ca), timeout=5)


@pytest.mark.parametrize("how", ["token", "cert"])
def test_tenant_admin_works_in_its_tenant_only(secured: ApiServerProcess, tmp_path: Path,
                                               how: str) -> None:
    me = (token_session(secured, "tok-acme") if how == "token"
          else cert_session(secured, tmp_path, "admin", "acme"))
    name = f"mine-{how}"
    made = me.ok(me.post("/api/v1/namespaces/default/configmaps", configmap(name)))
    assert made["metadata"]["tenant"] == "acme"
    assert name in me.names("/api/v1/tenants/acme/namespaces/default/configmaps")
    assert name in me.names("/api/v1/namespaces/default/configmaps")
    assert me.get("/api/v1/tenants/acme").status_code == 200
    Rest(secured.url).ok(Rest(secured.url).post(
        "/api/v1/tenants/beta/namespaces/default/configmaps", configmap(f"theirs-{how}")))
    for path in ("/api/v1/tenants/beta/namespaces/default/configmaps",
                 f"/api/v1/tenants/beta/namespaces/default/configmaps/theirs-{how}",
                 "/api/v1/tenants/all/configmaps", "/api/v1/nodes", "/api/v1/tenants",
                 "/api/v1/tenants/beta"):
        resp = me.get(path)
        assert resp.status_code == 403 and resp.json()["reason"] == "Forbidden", path
    assert me.post("/api/v1/tenants/beta/namespaces/default/configmaps",
                   configmap("x")).status_code == 403
    assert me.get("/api/v1/pods").json()["kind"] == "PodList", "short path: own tenant"


def test_no_resource_or_verb_leaks_across_tenants(secured: ApiServerProcess) -> None:
    """A tenant admin tries every resource and verb on tenant beta and at cluster scope."""
    me = token_session(secured, "tok-acme")
    leaks = []
    for rt in REGISTRY:
        base = "/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"
        if rt.scope is Scope.NAMESPACE:
            paths = [f"{base}/tenants/beta/namespaces/default/{rt.plural}",
                     f"{base}/tenants/beta/{rt.plural}", f"{base}/tenants/all/{rt.plural}"]
        elif rt.scope is Scope.TENANT:
            paths = [f"{base}/tenants/beta/{rt.plural}", f"{base}/tenants/all/{rt.plural}"]
        else:
            paths = [f"{base}/{rt.plural}"]
        for path in paths:
            calls = [me.get(path), me.get(path, watch="1", timeoutSeconds="1"),
                     me.get(path, labelSelector="a=b"), me.get(path, fieldSelector=(
                         "metadata.tenant=acme")),
                     me.post(path, {"metadata": {"name": "x"}}), me.delete(path),
                     me.get(f"{path}/x"), me.put(f"{path}/x", {"metadata": {"name": "x"}}),
                     me.patch(f"{path}/x", {}), me.delete(f"{path}/x")]
            for sub in sorted(rt.subresources):
                calls.append(me.post(f"{path}/x/{sub}", {}))
                calls.append(me.get(f"{path}/x/{sub}"))
            leaks += [(path, r.request.method, r.status_code) for r in calls
                      if r.status_code != 403 and not _all_is_no_tenant(r)]
    assert leaks == []


def _all_is_no_tenant(resp: requests.Response) -> bool:
    """A write to tenant `all` is refused as malformed (400) before anything else."""
    return (resp.status_code == 400 and "/tenants/all/" in (resp.request.url or "")
            and resp.request.method != "GET")


def test_minted_kubeconfig_works_with_kubectl(secured: ApiServerProcess,
                                              tmp_path: Path) -> None:
    out = tmp_path / "acme.kubeconfig"
    subprocess.run([sys.executable, "-m", "arktos.cli.main", "certs", "issue", "--data-dir",
                    str(secured.data_dir), "--user", "admin", "--tenant", "acme",
                    "--kubeconfig", str(out), "--server", secured.url], check=True)
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", str(out), *args],
                              capture_output=True, text=True, timeout=60, check=False)
    made = kubectl("create", "configmap", "from-kubectl", "--from-literal=a=b")
    assert made.returncode == 0, made.stderr
    listed = kubectl("get", "configmaps")
    assert "from-kubectl" in listed.stdout
    assert Rest(secured.url).get(
        "/api/v1/tenants/acme/namespaces/default/configmaps/from-kubectl").status_code == 200
    denied = kubectl("get", "nodes")  # discovery does not even show nodes to a tenant user
    assert denied.returncode == 1
    assert "doesn't have a resource type \"nodes\"" in denied.stderr


def test_kubectl_auth_can_i_answers_per_tenant(secured: ApiServerProcess,
                                                tmp_path: Path) -> None:
    out = tmp_path / "acme.kubeconfig"
    subprocess.run([sys.executable, "-m", "arktos.cli.main", "certs", "issue", "--data-dir",
                    str(secured.data_dir), "--user", "dev", "--tenant", "acme",
                    "--kubeconfig", str(out), "--server", secured.url], check=True)
    def can_i(config: Path, *args: str) -> str:
        done = subprocess.run(["kubectl", "--kubeconfig", str(config), "auth", "can-i", *args],
                              capture_output=True, text=True, timeout=60, check=False)
        return done.stdout.strip()
    assert can_i(secured.kubeconfig, "create", "pods") == "yes"
    assert can_i(out, "create", "pods").startswith("no"), "dev has no binding yet"
    admin = Rest(secured.url)
    admin.ok(admin.post("/apis/rbac.authorization.k8s.io/v1/tenants/acme/namespaces/default/"
                        "rolebindings", {
        "metadata": {"name": "dev-edit"},
        "subjects": [{"kind": "User", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "edit"}}))
    _wait(lambda: can_i(out, "create", "pods") == "yes")
    assert can_i(out, "create", "pods", "-n", "kube-system").startswith("no")
    assert can_i(out, "get", "nodes").startswith("no")


def test_discovery_shows_a_tenant_user_only_what_it_may_use(secured: ApiServerProcess) -> None:
    mine = {r["name"] for r in token_session(secured, "tok-acme").ok(
        token_session(secured, "tok-acme").get("/api/v1"))["resources"]}
    everything = {r["name"] for r in Rest(secured.url).ok(Rest(secured.url).get("/api/v1"))[
        "resources"]}
    assert "pods" in mine and "tenants" in mine and "nodes" not in mine
    assert "nodes" in everything
