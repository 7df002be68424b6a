"""Open a storage backend from a URL: `sqlite:///abs/path/state.db` or
`etcd://host:port[,host:port...]`."""

from __future__ import annotations

from arktos.storage.interface import Storage

_USAGE = "expected sqlite:///absolute/path/state.db or etcd://host:port[,host:port...]"


async def open_storage(url: str) -> Storage:
    """Open the store `url` names. Raises ValueError for a malformed or unknown URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a storage URL: {url!r} ({_USAGE})")
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(f"sqlite URL needs an absolute path: {url!r} ({_USAGE})")
        from arktos.storage.sqlite import SqliteStorage

        return await SqliteStorage.open(rest)
    if scheme == "etcd":
        from arktos.storage.etcd import EtcdStorage

        return await EtcdStorage.open(parse_endpoints(rest))
    raise ValueError(f"unsupported storage URL scheme {scheme!r} in {url!r} ({_USAGE})")


def parse_endpoints(text: str) -> list[str]:
    """Split "host:port,host:port" into endpoints, checking each has a host and a port."""
    endpoints = [part.strip() for part in text.rstrip("/").split(",")]
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"bad etcd endpoint {endpoint!r}: expected host:port ({_USAGE})")
    return endpoints
