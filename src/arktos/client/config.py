"""Kubeconfig loading: several files merged as kubectl does, contexts, and Arktos' `tenant`.

Merge rule (kubectl's): files are read in order; for each named cluster/user/context and for
`current-context`, the first file that defines it wins. No I/O beyond reading the files.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_KUBECONFIG = Path.home() / ".kube" / "config"


class ConfigError(Exception):
    """A kubeconfig that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach one API server, and as which tenant."""

    server: str
    tenant: str = ""
    """The context's tenant: requests use full tenant paths; "" lets the server decide."""
    namespace: str = "default"
    token: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure: bool = False
    qps: float = 50.0
    """Client-side rate limit (requests per second, sustained); 0 disables it."""
    burst: int = 100
    timeout: float = 30.0
    """Seconds per request (not for watches, which use their own timeout)."""
    max_retries: int = 5
    context: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **changes: Any) -> ClientConfig:
        """A copy with the given non-empty fields replaced (e.g. `tenant=` from `--tenant`)."""
        return replace(self, **{k: v for k, v in changes.items() if v not in (None, "")})


def kubeconfig_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """`explicit`, else $KUBECONFIG (colon-separated), else ~/.kube/config."""
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [DEFAULT_KUBECONFIG]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    return data


def merge_kubeconfigs(paths: list[Path]) -> dict[str, Any]:
    """One kubeconfig dict from several files (first definition wins)."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {k: set() for k in merged}
    for path in paths:
        data = _read(path)
        if not merged.get("current-context"):
            merged["current-context"] = data.get("current-context") or ""
        for section in ("clusters", "users", "contexts"):
            for entry in data.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if name and name not in seen[section]:
                    seen[section].add(name)
                    merged[section].append(_relative_paths(entry, path.parent))
    return merged


def _relative_paths(entry: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve file references relative to the kubeconfig's folder, as kubectl does."""
    out = dict(entry)
    for section in ("cluster", "user"):
        body = dict(out.get(section) or {})
        for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
            if body.get(key) and not os.path.isabs(body[key]):
                body[key] = str(base / body[key])
        if section in out:
            out[section] = body
    return out


def _inline_to_files(cluster: dict[str, Any], user: dict[str, Any]) -> None:
    """Write `*-data` (base64 PEM) entries to private files and point the file keys at them:
    Python's TLS loads certificates and keys from files only."""
    pairs = [(cluster, "certificate-authority"), (user, "client-certificate"),
             (user, "client-key")]
    folder: Path | None = None
    for section, key in pairs:
        data = section.get(f"{key}-data")
        if not data or section.get(key):
            continue
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="arktos-kubeconfig-"))
            atexit.register(shutil.rmtree, folder, True)
        path = folder / key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
        section[key] = str(path)


def _named(merged: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    for entry in merged[section]:
        if entry["name"] == name:
            return dict(entry.get(section[:-1]) or {})
    raise ConfigError(f'{section[:-1]} "{name}" is not in the kubeconfig')


def load_config(kubeconfig: str | os.PathLike[str] | None = None, *, context: str = "",
                tenant: str = "", namespace: str = "") -> ClientConfig:
    """The client config of `context` (default: current-context), with overrides applied."""
    paths = kubeconfig_paths(kubeconfig)
    if kubeconfig and not paths[0].exists():
        raise ConfigError(f"kubeconfig {paths[0]} not found")
    merged = merge_kubeconfigs(paths)
    name = context or merged.get("current-context") or ""
    if not name:
        raise ConfigError(f"no context set in {', '.join(map(str, paths))}: pass --context or "
                          "use `arkctl config use-context NAME`")
    ctx = _named(merged, "contexts", name)
    cluster = _named(merged, "clusters", ctx.get("cluster", ""))
    user = _named(merged, "users", ctx["user"]) if ctx.get("user") else {}
    _inline_to_files(cluster, user)
    token = user.get("token", "")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    config = ClientConfig(
        server=str(cluster.get("server", "")).rstrip("/"), tenant=ctx.get("tenant", ""),
        namespace=ctx.get("namespace") or "default", token=token,
        ca_file=cluster.get("certificate-authority", ""),
        cert_file=user.get("client-certificate", ""), key_file=user.get("client-key", ""),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)), context=name)
    if not config.server:
        raise ConfigError(f'cluster of context "{name}" has no server address')
    if tenant == "all" or config.tenant == "all":
        raise ConfigError('"all" is not a tenant; use --all-tenants to list across tenants')
    return config.with_overrides(tenant=tenant, namespace=namespace)
