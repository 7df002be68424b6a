"""An etcd shared with other clients: their writes must not stall the API server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from arktos.storage.url import open_storage
from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest, configmap


async def _foreign_write(url: str) -> None:
    store = await open_storage(url)
    try:
        await store.create(f"/foreign/{uuid.uuid4().hex}", b"not ours")
    finally:
        await store.close()


def test_foreign_writes_do_not_stall_consistent_lists(etcd: str, tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path, etcd).start()
    try:
        rest = Rest(server.url)
        asyncio.run(_foreign_write(etcd))
        rest.ok(rest.post("/api/v1/namespaces/default/configmaps", configmap("after")))
        asyncio.run(_foreign_write(etcd))
        listed = rest.get("/api/v1/namespaces/default/configmaps")
        assert listed.status_code == 200, listed.text
        assert "after" in [i["metadata"]["name"] for i in listed.json()["items"]]
    finally:
        server.stop()
