"""Every active namespace gets, and keeps, its `default` ServiceAccount; pods use it."""

from __future__ import annotations

from collections.abc import Callable

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.controllers.serviceaccount import ServiceAccountController
from tests.controllers.conftest import running
from tests.waiting import eventually


async def test_namespaces_get_a_default_service_account(api: ApiClient,
                                                        unique: Callable[[str], str]) -> None:
    accounts = ResourceClient(api, "serviceaccounts")
    namespaces = ResourceClient(api, "namespaces")
    name = unique("sa")

    async def has_default() -> bool:
        try:
            await accounts.get("default", namespace=name)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async with running(api, [ServiceAccountController]):
        await namespaces.create({"metadata": {"name": name}})
        await eventually(has_default)
        await accounts.delete("default", namespace=name)
        await eventually(has_default)
    pod = await ResourceClient(api, "pods").create({
        "metadata": {"name": "p", "namespace": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert pod["spec"]["serviceAccountName"] == "default"
