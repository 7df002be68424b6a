from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest

_counter = itertools.count()


@pytest.fixture
def rest(apiserver: ApiServerProcess) -> Rest:
    return Rest(apiserver.url)


@pytest.fixture
def ns(rest: Rest) -> Iterator[str]:
    """A fresh namespace of the system tenant."""
    name = f"test-{next(_counter)}"
    rest.ok(rest.post("/api/v1/namespaces", {"metadata": {"name": name}}))
    yield name


@pytest.fixture
def tenant_pair(rest: Rest) -> tuple[str, str]:
    """Two fresh tenants, each with a `default` namespace."""
    n = next(_counter)
    a, b = f"ta-{n}", f"tb-{n}"
    rest.create_tenant(a)
    rest.create_tenant(b)
    return a, b
