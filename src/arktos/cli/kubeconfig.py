"""Writing kubeconfig files that kubectl and the official Python client read as they are.

Contexts carry Arktos' `tenant` field (ignored by stock clients)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from arktos.certs import write_private


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (a kubeconfig may hold a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
