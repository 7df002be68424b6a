"""Container environment resolved from the API (pure, with an in-memory fetch)."""

from __future__ import annotations

import base64

import pytest

from arktos.agent.envvars import needs_api, resolved
from arktos.agent.runtime import Obj, RuntimeFailure

OBJECTS = {("configmaps", "cfg"): {"data": {"mode": "fast", "LEVEL": "3"}},
           ("secrets", "creds"): {"data": {"token": base64.b64encode(b"s3cret").decode()}}}


async def fetch(resource: str, name: str) -> Obj | None:
    return OBJECTS.get((resource, name))


def pod(*env: Obj, env_from: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "status": {"podIP": "10.0.0.7"},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "c", "env": list(env), "envFrom": env_from or []}]}}


async def test_value_from_sources_fields_and_expansion() -> None:
    p = pod({"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "URL", "value": "http://$(IP):80/$(MODE)/$(NOPE)"},
            env_from=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}])
    assert needs_api(p) and not needs_api(pod({"name": "A", "value": "1"}))
    env = {e["name"]: e["value"] for e in (await resolved(p, fetch))["spec"]["containers"][0][
        "env"]}
    assert env == {"CFG_mode": "fast", "CFG_LEVEL": "3", "MODE": "fast", "TOKEN": "s3cret",
                   "ME": "p", "IP": "10.0.0.7", "URL": "http://10.0.0.7:80/fast/$(NOPE)"}
    assert "envFrom" not in (await resolved(p, fetch))["spec"]["containers"][0]


async def test_missing_references_fail_unless_optional() -> None:
    missing = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}
    with pytest.raises(RuntimeFailure, match="couldn't find key nope") as exc:
        await resolved(pod(missing), fetch)
    assert exc.value.reason == "CreateContainerConfigError"
    optional = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k",
                                                            "optional": True}}}
    assert (await resolved(pod(optional), fetch))["spec"]["containers"][0]["env"] == []
    with pytest.raises(RuntimeFailure, match='secret "gone" not found'):
        await resolved(pod(env_from=[{"secretRef": {"name": "gone"}}]), fetch)
