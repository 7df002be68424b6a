"""Start a real `arktos apiserver` process for tests (SQLite or etcd storage)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import requests

_START_TIMEOUT = 30.0
CREDENTIALS: dict[str, tuple[str, tuple[str, str]]] = {}
"""Base URL -> (CA file, (admin cert, admin key)) of every server started by the tests."""


def admin_ssl_context(url: str) -> ssl.SSLContext:
    """A client TLS context trusting the server's CA and presenting its admin certificate."""
    ca, (cert, key) = CREDENTIALS[url]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return ctx


def admin_credentials(data_dir: Path) -> tuple[str, tuple[str, str]]:
    """The CA file and the admin client certificate/key of a data dir's PKI."""
    pki = data_dir / "pki"
    return str(pki / "ca.crt"), (str(pki / "admin.crt"), str(pki / "admin.key"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServerProcess:
    """A running API server; `url` is its base URL, `kubeconfig` the admin kubeconfig."""

    def __init__(self, data_dir: Path, storage: str = "", port: int = 0,
                 command: str = "apiserver", extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.storage = storage
        self.port = port or free_port()
        self.command = command
        self.extra_args = extra_args
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = data_dir / "admin.kubeconfig"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiServerProcess:
        args = [sys.executable, "-m", "arktos.cli.main", self.command,
                "--data-dir", str(self.data_dir), "--port", str(self.port),
                "--bookmark-interval", "1", *self.extra_args]
        if self.storage:
            args += ["--storage", self.storage]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / f"{self.command}.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"arktos exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            ca, cert = admin_credentials(self.data_dir)
            try:
                if requests.get(self.url + "/readyz", timeout=1, verify=ca,
                                cert=cert).status_code == 200:
                    CREDENTIALS[self.url] = (ca, cert)
                    return
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"arktos did not become ready: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.data_dir / f"{self.command}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (SIGTERM: clean; SIGKILL: crash) and return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=20)


class ComponentProcess:
    """Another `arktos` component (controller-manager, ...) run as a child process."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ComponentProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "arktos.cli.main", *self.args],
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=20)
