"""Over HTTPS: a user who may edit roles and bindings cannot grant more than it holds, and a
node may create only its own Node and Lease (the name comes from the body)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from arktos.api.rbac_policy import rule, subject
from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest
from tests.e2e.test_identity import cert_session, token_session

RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces/team"
TOKENS = "tok-dev,dev,u-9,,,acme\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """Tenant acme, namespace team, where user `dev` may read pods and edit roles/bindings."""
    data = Path(tmp_path_factory.mktemp("escalation"))
    (data / "tokens.csv").write_text(TOKENS)
    server = ApiServerProcess(data, extra_args=("--token-auth-file",
                                                str(data / "tokens.csv"))).start()
    admin = Rest(server.url)
    admin.create_tenant("acme")
    admin.ok(admin.post("/api/v1/tenants/acme/namespaces", {"metadata": {"name": "team"}}))
    base = "/apis/rbac.authorization.k8s.io/v1/tenants/acme/namespaces/team"
    admin.ok(admin.post(f"{base}/roles", role("rbac-editor", [
        rule(["get", "list"], [""], ["pods"]),
        rule(["create", "update", "patch"], ["rbac.authorization.k8s.io"],
             ["roles", "rolebindings"])])))
    admin.ok(admin.post(f"{base}/rolebindings", binding("dev-editor", "rbac-editor", "dev")))
    dev = token_session(server, "tok-dev")
    for _ in range(100):  # the authorizer's index follows the watch cache
        if dev.get("/api/v1/namespaces/team/pods").status_code == 200:
            break
        time.sleep(0.05)
    yield server
    server.stop()


def role(name: str, rules: list[dict[str, object]]) -> dict[str, object]:
    return {"metadata": {"name": name}, "rules": rules}


def binding(name: str, role_name: str, user: str, kind: str = "Role") -> dict[str, object]:
    return {"metadata": {"name": name}, "subjects": [subject("User", user)],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                        "name": role_name}}


def test_roles_and_bindings_cannot_grant_more_than_the_writer_holds(
        server: ApiServerProcess) -> None:
    dev = token_session(server, "tok-dev")
    dev.ok(dev.post(f"{RBAC}/roles", role("reader", [rule(["get"], [""], ["pods"])])), 201)
    more = dev.post(f"{RBAC}/roles", role("deleter", [rule(["delete"], [""], ["pods"])]))
    assert more.status_code == 403, more.text
    assert "not currently held" in more.json()["message"]
    widen = dev.patch(f"{RBAC}/roles/reader", {"rules": [rule(["*"], ["*"], ["*"])]})
    assert widen.status_code == 403, widen.text
    assert dev.get(f"{RBAC}/roles/reader").status_code == 403  # dev may not even read roles
    admin = Rest(server.url)
    stored = admin.get("/apis/rbac.authorization.k8s.io/v1/tenants/acme/namespaces/team/"
                       "roles/reader").json()
    assert stored["rules"] == [rule(["get"], [""], ["pods"])], "a refused patch changes nothing"
    dev.ok(dev.post(f"{RBAC}/rolebindings", binding("readers", "reader", "eve")), 201)
    promote = dev.post(f"{RBAC}/rolebindings",
                       binding("me-admin", "admin-role", "dev", kind="ClusterRole"))
    assert promote.status_code == 403, promote.text


def test_a_node_creates_only_its_own_node_and_lease(server: ApiServerProcess,
                                                     tmp_path: Path) -> None:
    node = cert_session(server, tmp_path, "system:node:n1", "system",
                        groups=("system:nodes",))
    own = node.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert own.status_code == 201, own.text
    other = node.post("/api/v1/nodes", {"metadata": {"name": "n2"}})
    assert other.status_code == 403 and "only create its own Node" in other.text
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    assert node.post(leases, {"metadata": {"name": "n1"}, "spec": {}}).status_code == 201
    assert node.post(leases, {"metadata": {"name": "n2"}, "spec": {}}).status_code == 403
    assert Rest(server.url).get("/api/v1/nodes/n2").status_code == 404
