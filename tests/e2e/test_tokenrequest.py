"""TokenRequest (`serviceaccounts/{name}/token`) against a real server: minting by full and
short paths, expiry, validation, tenant isolation, pod binding, audiences, nodes, and
`kubectl create token`."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from arktos.api.rbac_policy import tenant_policy
from arktos.apiserver.authn import API_AUDIENCE, ServiceAccountTokens
from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest, pod

TOKENS = "tok-acme,admin,u-1,,,acme\n"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
ACME = "/api/v1/tenants/acme/namespaces/default"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """A server with tenants acme and beta (their default policy posted by hand: no
    controller manager runs) and a static token for acme's `admin`."""
    data = Path(tmp_path_factory.mktemp("tokenrequest"))
    (data / "tokens.csv").write_text(TOKENS)
    proc = ApiServerProcess(data, extra_args=("--token-auth-file",
                                              str(data / "tokens.csv"))).start()
    admin = Rest(proc.url)
    for tenant in ("acme", "beta"):
        admin.create_tenant(tenant)
        for obj in tenant_policy(tenant):
            plural = obj["kind"].lower() + "s"
            admin.ok(admin.post(f"{RBAC}/tenants/{tenant}/{plural}", obj))
        admin.ok(admin.post(f"/api/v1/tenants/{tenant}/namespaces/default/serviceaccounts",
                            {"metadata": {"name": "robot"}}))
    yield proc
    proc.stop()


@pytest.fixture
def admin(server: ApiServerProcess) -> Rest:
    return Rest(server.url)


def bearer(server: ApiServerProcess, token: str) -> Rest:
    rest = Rest(server.url, anonymous=True)
    rest.http.headers["Authorization"] = f"Bearer {token}"
    return rest


def claims(token: str) -> dict[str, Any]:
    found: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return found


def wait(check: Callable[[], bool], tries: int = 100) -> None:
    for _ in range(tries):
        if check():
            return
        threading.Event().wait(0.1)
    raise AssertionError("timed out")


def mint(rest: Rest, path: str, spec: dict[str, Any] | None = None) -> Any:
    return rest.post(f"{path}/token", {"apiVersion": "authentication.k8s.io/v1",
                                       "kind": "TokenRequest", "spec": spec or {}})


def assert_is(server: ApiServerProcess, token: str, user: str, tenant: str) -> None:
    """The token authenticates as `user` of `tenant`: without a binding it may not list
    secrets, and the 403 names it (a bad token would be 401)."""
    resp = bearer(server, token).get(f"/api/v1/tenants/{tenant}/namespaces/default/secrets")
    assert resp.status_code == 403, resp.text
    assert f'User "{user}" cannot list' in resp.json()["message"]
    assert f'tenant "{tenant}"' in resp.json()["message"]


def bind_view(admin: Rest, tenant: str, account: str) -> None:
    admin.ok(admin.post(f"{RBAC}/tenants/{tenant}/namespaces/default/rolebindings", {
        "metadata": {"name": f"{account}-view"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "default"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"}}))


def new_account(admin: Rest, name: str, tenant: str = "acme") -> dict[str, Any]:
    found: dict[str, Any] = admin.ok(admin.post(
        f"/api/v1/tenants/{tenant}/namespaces/default/serviceaccounts", {"metadata": {"name": name}}))
    return found


def test_mint_by_full_path_as_kube_answers(server: ApiServerProcess, admin: Rest) -> None:
    resp = mint(admin, f"{ACME}/serviceaccounts/robot")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["kind"], body["apiVersion"]) == ("TokenRequest", "authentication.k8s.io/v1")
    assert {k: body["metadata"][k] for k in ("name", "namespace", "tenant")} == {
        "name": "robot", "namespace": "default", "tenant": "acme"}
    assert body["metadata"]["creationTimestamp"]
    assert body["spec"] == {"audiences": [API_AUDIENCE], "expirationSeconds": 3600,
                            "boundObjectRef": None}
    token = body["status"]["token"]
    got = claims(token)
    assert got["exp"] - got["iat"] == 3600
    assert got["aud"] == [API_AUDIENCE] and got["arktos.io/tenant"] == "acme"
    expires = datetime.fromisoformat(body["status"]["expirationTimestamp"])
    assert abs(expires.timestamp() - (time.time() + 3600)) < 60
    assert_is(server, token, "system:serviceaccount:default:robot", "acme")


def test_tenant_user_mints_by_short_path_in_its_own_tenant(server: ApiServerProcess,
                                                          admin: Rest) -> None:
    new_account(admin, "shorty")
    acme = bearer(server, "tok-acme")
    body = acme.ok(mint(acme, "/api/v1/namespaces/default/serviceaccounts/shorty"))
    assert body["metadata"]["tenant"] == "acme"
    token = body["status"]["token"]
    assert_is(server, token, "system:serviceaccount:default:shorty", "acme")
    bind_view(admin, "acme", "shorty")
    sa = bearer(server, token)
    wait(lambda: sa.get(f"{ACME}/pods").status_code == 200)
    assert sa.get("/api/v1/tenants/beta/namespaces/default/pods").status_code == 403


def test_explicit_expiration_is_kept_and_capped_at_48h(admin: Rest) -> None:
    for asked, given in ((7200, 7200), (600, 600), (10**7, 48 * 3600)):
        body = admin.ok(mint(admin, f"{ACME}/serviceaccounts/robot",
                             {"expirationSeconds": asked}))
        assert body["spec"]["expirationSeconds"] == given
        got = claims(body["status"]["token"])
        assert got["exp"] - got["iat"] == given


def test_too_short_expiration_is_invalid(admin: Rest) -> None:
    resp = mint(admin, f"{ACME}/serviceaccounts/robot", {"expirationSeconds": 599})
    assert resp.status_code == 422, resp.text
    status = resp.json()
    assert (status["kind"], status["reason"]) == ("Status", "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert "may not specify a duration less than 10 minutes" in status["message"]


def test_missing_service_account_is_404(admin: Rest) -> None:
    resp = mint(admin, f"{ACME}/serviceaccounts/nobody")
    assert resp.status_code == 404
    status = resp.json()
    assert (status["kind"], status["reason"]) == ("Status", "NotFound")
    assert status["message"] == 'serviceaccounts "nobody" not found'


def test_tenant_user_cannot_mint_in_another_tenant(server: ApiServerProcess) -> None:
    acme = bearer(server, "tok-acme")
    beta = "/api/v1/tenants/beta/namespaces/default/serviceaccounts"
    answers = []
    for name in ("robot", "nobody"):  # one exists, one does not: the answers must not differ
        resp = mint(acme, f"{beta}/{name}")
        assert resp.status_code == 403, resp.text
        assert resp.json()["kind"] == "Status"
        answers.append(resp.json()["message"].replace(name, "NAME"))
    assert answers[0] == answers[1]


def test_pod_bound_token_stops_working_when_the_pod_goes(server: ApiServerProcess,
                                                         admin: Rest) -> None:
    new_account(admin, "podder")
    bind_view(admin, "acme", "podder")
    spec = pod("bound-pod")
    spec["spec"]["serviceAccountName"] = "podder"
    made = admin.ok(admin.post(f"{ACME}/pods", spec))
    uid = made["metadata"]["uid"]
    body = admin.ok(mint(admin, f"{ACME}/serviceaccounts/podder", {"boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "bound-pod", "uid": uid}}))
    assert body["spec"]["boundObjectRef"]["uid"] == uid
    token = body["status"]["token"]
    assert claims(token)["kubernetes.io"]["pod"] == {"name": "bound-pod", "uid": uid}
    sa = bearer(server, token)
    wait(lambda: sa.get(f"{ACME}/pods").status_code == 200)
    admin.ok(admin.delete(f"{ACME}/pods/bound-pod", gracePeriodSeconds="0"))
    wait(lambda: sa.get(f"{ACME}/pods").status_code == 401)
    admin.ok(admin.post(f"{ACME}/pods", spec))  # same name, another uid: still refused
    time.sleep(0.3)
    resp = sa.get(f"{ACME}/pods")
    assert resp.status_code == 401 and resp.json()["reason"] == "Unauthorized"


def test_binding_to_a_missing_wrong_or_foreign_pod_is_refused(admin: Rest) -> None:
    made = admin.ok(admin.post(f"{ACME}/pods", pod("robot-pod")))  # runs as `default`
    path = f"{ACME}/serviceaccounts/robot"
    missing = mint(admin, path, {"boundObjectRef": {"kind": "Pod", "name": "ghost"}})
    assert missing.status_code == 404 and missing.json()["message"] == 'pods "ghost" not found'
    wrong_uid = mint(admin, path, {"boundObjectRef": {"kind": "Pod", "name": "robot-pod",
                                                      "uid": "not-" + made["metadata"]["uid"]}})
    assert wrong_uid.status_code == 409 and "does not match" in wrong_uid.json()["message"]
    other_sa = mint(admin, path, {"boundObjectRef": {"kind": "Pod", "name": "robot-pod"}})
    assert other_sa.status_code == 400
    assert 'running with serviceaccount "default"' in other_sa.json()["message"]
    beta_pod = admin.ok(admin.post("/api/v1/tenants/beta/namespaces/default/pods",
                                   pod("beta-pod")))
    across = mint(admin, path, {"boundObjectRef": {"kind": "Pod", "name": "beta-pod",
                                                   "uid": beta_pod["metadata"]["uid"]}})
    assert across.status_code == 404, "the pod must be in the token's tenant and namespace"


def signer(server: ApiServerProcess) -> ServiceAccountTokens:
    pki = server.data_dir / "pki"
    return ServiceAccountTokens(private_key=(pki / "sa.key").read_bytes(),
                                public_key=(pki / "sa.pub").read_bytes())


def test_expired_foreign_audience_and_orphaned_tokens_are_401(server: ApiServerProcess,
                                                              admin: Rest) -> None:
    account = new_account(admin, "shortlived")
    uid = account["metadata"]["uid"]
    bind_view(admin, "acme", "shortlived")
    tokens = signer(server)
    good = tokens.issue(tenant="acme", namespace="default", name="shortlived", uid=uid, ttl=600,
                        audiences=[API_AUDIENCE])
    wait(lambda: bearer(server, good).get(f"{ACME}/pods").status_code == 200)
    expired = tokens.issue(tenant="acme", namespace="default", name="shortlived", uid=uid,
                           ttl=600, now=int(time.time()) - 3600)
    foreign = admin.ok(mint(admin, f"{ACME}/serviceaccounts/shortlived",
                            {"audiences": ["https://vault.example"]}))["status"]["token"]
    for bad in (expired, foreign):
        resp = bearer(server, bad).get(f"{ACME}/pods")
        assert resp.status_code == 401 and resp.json()["reason"] == "Unauthorized"
    admin.ok(admin.delete(f"{ACME}/serviceaccounts/shortlived"))
    wait(lambda: bearer(server, good).get(f"{ACME}/pods").status_code == 401)


def node_session(server: ApiServerProcess, tmp_path: Path, node: str) -> Rest:
    out = tmp_path / f"{node}.kubeconfig"
    subprocess.run([sys.executable, "-m", "arktos.cli.main", "certs", "issue", "--data-dir",
                    str(server.data_dir), "--user", f"system:node:{node}", "--group",
                    "system:nodes", "--tenant", "system", "--kubeconfig", str(out),
                    "--server", server.url], check=True, capture_output=True)
    user = yaml.safe_load(out.read_text())["users"][0]["user"]
    pem = tmp_path / f"{node}.pem"
    pem.write_bytes(base64.b64decode(user["client-certificate-data"]) +
                    base64.b64decode(user["client-key-data"]))
    rest = Rest(server.url, anonymous=True)
    rest.http.cert = str(pem)
    return rest


def test_a_node_mints_only_tokens_bound_to_its_own_pods(server: ApiServerProcess,
                                                        admin: Rest, tmp_path: Path) -> None:
    uids = {}
    for name, node in (("on-n1", "n1"), ("on-n2", "n2")):
        spec = pod(name)
        spec["spec"].update(nodeName=node, serviceAccountName="robot")
        uids[name] = admin.ok(admin.post(f"{ACME}/pods", spec))["metadata"]["uid"]
    n1 = node_session(server, tmp_path, "n1")
    path = f"{ACME}/serviceaccounts/robot"
    body = n1.ok(mint(n1, path, {"boundObjectRef": {"kind": "Pod", "name": "on-n1",
                                                    "uid": uids["on-n1"]}}))
    assert_is(server, body["status"]["token"], "system:serviceaccount:default:robot", "acme")
    for spec in ({"boundObjectRef": {"kind": "Pod", "name": "on-n2"}}, {}):
        resp = mint(n1, path, spec)
        assert resp.status_code == 403, resp.text


def test_kubectl_create_token(server: ApiServerProcess, admin: Rest) -> None:
    binary = shutil.which("kubectl")
    assert binary is not None, "kubectl not found"
    admin.ok(admin.post("/api/v1/namespaces", {"metadata": {"name": "kc-token"}}))
    admin.ok(admin.post("/api/v1/namespaces/kc-token/serviceaccounts",
                        {"metadata": {"name": "default"}}))

    def kubectl(*args: str) -> str:
        done = subprocess.run([binary, "--kubeconfig", str(server.kubeconfig), *args],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    token = kubectl("create", "token", "default", "-n", "kc-token")
    got = claims(token)
    assert got["sub"] == "system:serviceaccount:kc-token:default"
    assert got["exp"] - got["iat"] == 3600
    resp = bearer(server, token).get("/api/v1/namespaces/kc-token/secrets")
    assert resp.status_code == 403
    assert 'User "system:serviceaccount:kc-token:default"' in resp.json()["message"]
    longer = claims(kubectl("create", "token", "default", "-n", "kc-token", "--duration", "2h"))
    assert longer["exp"] - longer["iat"] == 7200
    made = admin.ok(admin.post("/api/v1/namespaces/kc-token/pods", pod("kc-pod")))
    bound = claims(kubectl("create", "token", "default", "-n", "kc-token", "--audience",
                           API_AUDIENCE, "--bound-object-kind", "Pod", "--bound-object-name",
                           "kc-pod"))
    assert bound["kubernetes.io"]["pod"] == {"name": "kc-pod", "uid": made["metadata"]["uid"]}
    assert bound["aud"] == [API_AUDIENCE]
