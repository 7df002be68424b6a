"""Kubeconfig loading: merging several files (first definition wins), relative file
references, the context's tenant and its overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from arktos.client.config import (
    ClientConfig,
    ConfigError,
    kubeconfig_paths,
    load_config,
    merge_kubeconfigs,
)
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient
from tests.apiserver_proc import CREDENTIALS, ApiServerProcess


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def context(name: str, cluster: str, user: str = "", **extra: str) -> dict[str, Any]:
    body: dict[str, Any] = {"cluster": cluster, **extra}
    if user:
        body["user"] = user
    return {"name": name, "context": body}


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    """`first` (at the top) and `second` (in a subfolder, with relative file references)."""
    first = write(tmp_path / "first.yaml", {
        "clusters": [{"name": "shared", "cluster": {"server": "https://first:6443/"}}],
        "users": [{"name": "alice", "user": {"token": "alice-token"}}],
        "contexts": [context("acme-ctx", "shared", "alice", tenant="acme", namespace="web")],
        "current-context": "acme-ctx",
    })
    sub = tmp_path / "sub"
    (sub / "certs").mkdir(parents=True)
    (sub / "token").write_text("bob-token\n")
    second = write(sub / "second.yaml", {
        "clusters": [
            {"name": "shared", "cluster": {"server": "https://second:6443"}},
            {"name": "local", "cluster": {"server": "https://local:6443",
                                          "certificate-authority": "certs/ca.pem"}},
            {"name": "abs", "cluster": {"server": "https://abs:6443",
                                        "certificate-authority": "/etc/abs/ca.pem",
                                        "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "alice", "user": {"token": "second-alice"}},
            {"name": "bob", "user": {"tokenFile": "token", "client-certificate": "certs/bob.crt",
                                     "client-key": "/keys/bob.key"}},
        ],
        "contexts": [
            context("acme-ctx", "local", "bob", tenant="other"),
            context("bob-ctx", "local", "bob"),
            context("abs-ctx", "abs"),
            context("all-ctx", "abs", tenant="all"),
        ],
        "current-context": "bob-ctx",
    })
    return first, second


def set_kubeconfig(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", ":".join(str(p) for p in paths))


def test_first_file_wins_for_current_context_clusters_users_and_contexts(
        two_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_files
    set_kubeconfig(monkeypatch, first, second)
    config = load_config()
    assert config == ClientConfig(server="https://first:6443", tenant="acme", namespace="web",
                                  token="alice-token", context="acme-ctx")
    merged = merge_kubeconfigs([first, second])
    assert [c["name"] for c in merged["clusters"]] == ["shared", "local", "abs"]
    assert [u["name"] for u in merged["users"]] == ["alice", "bob"]
    assert merged["current-context"] == "acme-ctx"

    set_kubeconfig(monkeypatch, second, first)
    config = load_config()
    assert (config.context, config.server, config.tenant) == ("bob-ctx", "https://local:6443", "")


def test_later_file_supplies_current_context_when_first_has_none(
        tmp_path: Path, two_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, second = two_files
    bare = write(tmp_path / "bare.yaml", {"clusters": [{"name": "x",
                                                         "cluster": {"server": "http://x"}}]})
    set_kubeconfig(monkeypatch, bare, tmp_path / "missing.yaml", second)
    assert load_config().context == "bob-ctx"


def test_relative_file_references_resolve_against_their_own_file(
        two_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_files
    set_kubeconfig(monkeypatch, first, second)
    config = load_config(context="bob-ctx")
    sub = second.parent
    assert config.ca_file == str(sub / "certs" / "ca.pem")
    assert config.cert_file == str(sub / "certs" / "bob.crt")
    assert config.key_file == "/keys/bob.key"
    assert config.token == "bob-token"  # read from tokenFile, relative to second.yaml
    assert config.tenant == "" and config.namespace == "default"
    absolute = load_config(context="abs-ctx")
    assert absolute.ca_file == "/etc/abs/ca.pem" and absolute.insecure


def test_tenant_and_namespace_overrides(two_files: tuple[Path, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_files
    set_kubeconfig(monkeypatch, first, second)
    assert load_config(tenant="globex").tenant == "globex"
    assert load_config(tenant="globex").namespace == "web"
    assert load_config(namespace="ops").namespace == "ops"
    assert load_config(tenant="").tenant == "acme"  # empty means "no override"
    assert ClientConfig(server="s", tenant="a").with_overrides(tenant=None).tenant == "a"


def test_all_is_refused_as_a_tenant(two_files: tuple[Path, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_files
    set_kubeconfig(monkeypatch, first, second)
    with pytest.raises(ConfigError, match="all-tenants"):
        load_config(tenant="all")
    with pytest.raises(ConfigError, match="all-tenants"):
        load_config(context="all-ctx")


def test_unusable_kubeconfigs(tmp_path: Path, two_files: tuple[Path, Path],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = two_files
    with pytest.raises(ConfigError, match='context "nope"'):
        load_config(first, context="nope")
    no_context = write(tmp_path / "nocontext.yaml", {"clusters": []})
    with pytest.raises(ConfigError, match="no context set"):
        load_config(no_context)
    no_server = write(tmp_path / "noserver.yaml", {
        "clusters": [{"name": "c", "cluster": {}}], "contexts": [context("x", "c")],
        "current-context": "x"})
    with pytest.raises(ConfigError, match="no server"):
        load_config(no_server)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(not_mapping)
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(broken)


def test_explicit_path_beats_the_environment(two_files: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_files
    set_kubeconfig(monkeypatch, first)
    assert kubeconfig_paths(second) == [second]
    assert load_config(second).context == "bob-ctx"
    monkeypatch.delenv("KUBECONFIG")
    assert kubeconfig_paths()[0].name == "config"


async def test_context_tenant_selects_full_paths_on_a_real_server(
        server: ApiServerProcess, tmp_path: Path) -> None:
    """The admin kubeconfig's context tenant is `system`: requests use full tenant paths; with
    the tenant emptied (short paths) the server picks the caller's tenant, also `system`."""
    config = load_config(server.kubeconfig)
    assert config.tenant == "system" and config.server == server.url
    ca, (cert, key) = CREDENTIALS[server.url]
    own = write(tmp_path / "mine.yaml", {
        "clusters": [{"name": "c", "cluster": {"server": server.url,
                                               "certificate-authority": ca}}],
        "users": [{"name": "u", "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "short", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "short"})
    async with ApiClient(config) as full, ApiClient(load_config(own)) as short:
        assert ResourceClient(full, "namespaces").path() == "/api/v1/tenants/system/namespaces"
        assert ResourceClient(short, "namespaces").path() == "/api/v1/namespaces"
        via_full = await ResourceClient(full, "namespaces").get("kube-system")
        via_short = await ResourceClient(short, "namespaces").get("kube-system")
        assert via_full["metadata"]["uid"] == via_short["metadata"]["uid"]
        assert via_short["metadata"]["tenant"] == "system"
