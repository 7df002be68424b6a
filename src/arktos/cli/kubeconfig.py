"""Writing kubeconfig files that kubectl and the official Python client read as they are.

Contexts carry Arktos' `tenant` field (ignored by stock clients)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
