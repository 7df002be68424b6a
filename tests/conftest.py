"""Shared fixtures: real API server processes on SQLite and on a real etcd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.etcd_server import EtcdProcess, start_etcd


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    """One real etcd per test session (per xdist worker)."""
    with start_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture(scope="session")
def etcd(etcd_server: EtcdProcess) -> str:
    """The storage URL of the session's etcd."""
    return etcd_server.url


@pytest.fixture(scope="session", params=["sqlite", "etcd"])
def apiserver(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """One running API server per storage backend, shared by the behaviour suite."""
    data_dir: Path = tmp_path_factory.mktemp(f"apiserver-{request.param}")
    storage = request.getfixturevalue("etcd") if request.param == "etcd" else ""
    server = ApiServerProcess(data_dir, storage).start()
    yield server
    server.stop()
