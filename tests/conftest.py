"""Shared fixtures: real API server processes on SQLite and on a real etcd."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from arktos.client.config import load_config
from arktos.client.rest import ApiClient
from tests.apiserver_proc import ApiServerProcess
from tests.etcd_server import EtcdProcess, start_etcd


@pytest.fixture(autouse=True)
def private_kubectl_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kubectl caches discovery per host:port; a server of an earlier test may have used the
    same port with another identity, so every test's kubectl gets its own cache."""
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kube-cache"))


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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """A real API server (SQLite) shared by one test module."""
    proc = ApiServerProcess(Path(tmp_path_factory.mktemp("module-apiserver"))).start()
    yield proc
    proc.stop()


@pytest.fixture
async def api(server: ApiServerProcess) -> AsyncIterator[ApiClient]:
    """A client of the module's API server, with the admin kubeconfig."""
    async with ApiClient(load_config(server.kubeconfig)) as client:
        yield client


_names = itertools.count()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names per test (servers are shared by a module)."""
    return lambda prefix: f"{prefix}-{next(_names)}"
