"""Start a real, throw-away `etcd` server for tests.

Usage::

    from tests.etcd_server import start_etcd

    with start_etcd(tmp_dir) as etcd:
        ...  # connect to etcd.endpoint ("127.0.0.1:PORT")

The server listens on free loopback ports, keeps its data in `tmp_dir/etcd-N/data` and logs
to `tmp_dir/etcd-N/etcd.log`; `stop()` (or leaving the `with` block) kills it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["EtcdProcess", "start_etcd"]

_START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EtcdProcess:
    """A running single-member etcd; `endpoint` is "127.0.0.1:PORT" (gRPC/HTTP client port)."""

    def __init__(self, proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> None:
        self.proc = proc
        self.endpoint = endpoint
        self.log_path = log_path

    @property
    def url(self) -> str:
        """The storage URL for `arktos.storage.url.open_storage`."""
        return f"etcd://{self.endpoint}"

    def stop(self) -> None:
        """Kill the server (idempotent) and wait for it to exit."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{endpoint}/health", timeout=1) as resp:
            return b'"true"' in resp.read()
    except (urllib.error.URLError, OSError):
        return False


class _EarlyExit(RuntimeError):
    """etcd exited while starting (most likely a port taken since we picked it)."""


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _EarlyExit(f"etcd exited with {proc.returncode}; see {log_path}:\n"
                             + log_path.read_text(errors="replace")[-2000:])
        if _healthy(endpoint):
            return
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"etcd did not become healthy within {_START_TIMEOUT}s; see {log_path}")


def start_etcd(tmp_dir: str | os.PathLike[str]) -> EtcdProcess:
    """Start `etcd` on free loopback ports with its data under `tmp_dir`; wait until healthy.

    Raises RuntimeError if the binary is missing or the server does not come up."""
    binary = shutil.which("etcd")
    if binary is None:
        raise RuntimeError(
            "etcd not found: install the Debian package etcd-server (make test does this)")
    base = Path(tmp_dir)
    for attempt in range(3):
        try:
            return _start(binary, base / f"etcd-{attempt}")
        except _EarlyExit:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start(binary: str, base: Path) -> EtcdProcess:
    base.mkdir(parents=True, exist_ok=True)
    client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    log_path = base / "etcd.log"
    args = [
        binary, "--name", "arktos-test", "--data-dir", str(base / "data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"arktos-test={peer}", "--initial-cluster-state", "new",
        "--logger", "zap", "--log-level", "error",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    endpoint = client.removeprefix("http://")
    _wait_ready(proc, endpoint, log_path)
    return EtcdProcess(proc, endpoint, log_path)
