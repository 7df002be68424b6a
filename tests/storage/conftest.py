"""Fixtures for the storage contract suite: every test runs once per backend.

`backend` opens stores of one kind (re-openable, to test restarts); `store` is one open store.
sqlite gets a fresh file per test; etcd shares one real server per session, so each test
gets its own key prefix (`backend.prefix`) and must only assert relative revisions.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arktos.storage.interface import Storage
from arktos.storage.url import open_storage


class Backend:
    """Opens stores of one backend at one location; closes them all at teardown."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.prefix = f"/t/{uuid.uuid4().hex[:12]}/"
        self._opened: list[Storage] = []

    async def open(self) -> Storage:
        store = await open_storage(self.url)
        self._opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self._opened:
            await store.close()


@pytest.fixture(params=["sqlite", "etcd"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("etcd_server").url  # shared with the API-server tests
    opener = Backend(request.param, url)
    yield opener
    await opener.close_all()


@pytest.fixture
async def store(backend: Backend) -> Storage:
    return await backend.open()


@pytest.fixture
def prefix(backend: Backend) -> str:
    """A key prefix no other test uses."""
    return backend.prefix
