"""ConfigMap and Secret volume files (pure parts and the file writes)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from arktos.agent.runtime import RuntimeFailure
from arktos.agent.volumes import files_of, write_files


def test_config_map_and_secret_files() -> None:
    cm = {"data": {"a.conf": "x=1", "b": "2"}, "binaryData": {"bin": base64.b64encode(
        b"\x00\x01").decode()}}
    assert files_of("configMap", cm, {}) == {"a.conf": b"x=1", "b": b"2", "bin": b"\x00\x01"}
    picked = files_of("configMap", cm, {"items": [{"key": "a.conf", "path": "etc/app.conf"}]})
    assert picked == {"etc/app.conf": b"x=1"}
    secret = {"data": {"token": base64.b64encode(b"s3cret").decode()}}
    assert files_of("secret", secret, {}) == {"token": b"s3cret"}


def test_write_files_replaces_content_and_refuses_escapes(tmp_path: Path) -> None:
    write_files(tmp_path / "v", {"etc/app.conf": b"x=1", "k": b"v"}, 0o600)
    assert (tmp_path / "v/etc/app.conf").read_bytes() == b"x=1"
    assert (tmp_path / "v/k").stat().st_mode & 0o777 == 0o600
    with pytest.raises(RuntimeFailure, match="escapes"):
        write_files(tmp_path / "v", {"../../evil": b"x"}, 0o644)
    assert not (tmp_path / "evil").exists()
