"""`arkctl config` on kubeconfig files, and what `arkctl` does without a server: connection
errors, usage errors, shell completion. No API server needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver_proc import free_port
from tests.cli import ARKCTL, Arkctl, table


def kubeconfig(port: int, *, current: str = "admin") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "c1", "cluster": {"server": f"http://127.0.0.1:{port}",
                                                "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "u1", "user": {"token": "s3cret", "client-key-data": "S0VZ"}}],
        "contexts": [
            {"name": "admin", "context": {"cluster": "c1", "user": "u1", "tenant": "system",
                                          "namespace": "default"}},
            {"name": "dev", "context": {"cluster": "c1", "user": "u1", "tenant": "acme"}}],
        "current-context": current,
    }


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(kubeconfig(free_port())))
    return path


def test_view_redacts_and_minifies(config_file: Path) -> None:
    ark = Arkctl(config_file)
    shown, raw, mini = (yaml.safe_load(out) for out in ark.ok_many(
        ("config", "view"), ("config", "view", "--raw"),
        ("config", "view", "--minify", "--context", "dev")))
    assert shown["users"][0]["user"] == {"token": "REDACTED", "client-key-data": "DATA+OMITTED"}
    assert shown["clusters"][0]["cluster"]["certificate-authority-data"] == "DATA+OMITTED"
    assert raw["users"][0]["user"]["token"] == "s3cret"
    assert [c["name"] for c in mini["contexts"]] == ["dev"] and mini["current-context"] == "dev"


def test_contexts_listed_switched_and_set(config_file: Path, tmp_path: Path) -> None:
    ark = Arkctl(config_file)
    listed, current = ark.ok_many(("config", "get-contexts"), ("config", "current-context"))
    assert table(listed) == [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE", "TENANT"],
                             ["*", "admin", "c1", "u1", "default", "system"],
                             ["dev", "c1", "u1", "acme"]]
    assert current == "admin\n"
    assert ark.ok("config", "use-context", "dev") == 'Switched to context "dev".\n'
    assert ark.ok("config", "set-context", "--current", "--tenant", "t1",
                  "--namespace", "team") == 'Context "dev" modified.\n'
    assert ark.ok("config", "set-context", "new", "--cluster=c1", "--user=u1") == \
        'Context "new" created.\n'
    written = yaml.safe_load(config_file.read_text())
    assert written["current-context"] == "dev"
    contexts = {c["name"]: c["context"] for c in written["contexts"]}
    assert contexts["dev"] == {"cluster": "c1", "user": "u1", "tenant": "t1",
                               "namespace": "team"}
    assert contexts["new"] == {"cluster": "c1", "user": "u1"}
    assert contexts["admin"]["tenant"] == "system"  # the rest is kept
    assert written["users"][0]["user"]["token"] == "s3cret"
    assert oct(config_file.stat().st_mode & 0o777) == "0o600"
    missing = ark("config", "use-context", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == \
        'error: no context exists with the name: "nope"'


def test_set_context_writes_the_file_holding_the_context(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text(yaml.safe_dump({"current-context": "admin", "contexts": []}))
    second.write_text(yaml.safe_dump(kubeconfig(free_port())))
    env = {"KUBECONFIG": f"{first}{os.pathsep}{second}"}
    ark = Arkctl(None, env=env)
    assert ark.ok("config", "set-context", "admin", "--tenant", "t9") == \
        'Context "admin" modified.\n'
    assert yaml.safe_load(first.read_text())["contexts"] == []
    admin = yaml.safe_load(second.read_text())["contexts"][0]
    assert admin["context"]["tenant"] == "t9"


def test_offline_errors_and_usage(config_file: Path) -> None:
    ark = Arkctl(config_file)
    refused, unknown, no_type, bad_flag, bad_output, timeout, all_name = ark.many(
        ("get", "pods"), ("get", "nosuchkinds"), ("get",), ("get", "pods", "--bogus"),
        ("get", "pods", "-o", "yamlx"), ("get", "pods", "--request-timeout", "5x"),
        ("get", "pods", "p1", "-A"))
    port = yaml.safe_load(config_file.read_text())["clusters"][0]["cluster"]["server"]
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"The connection to the server {port.removeprefix('http://')} was refused - did you "
        "specify the right host or port?")
    assert unknown.stderr.strip() == 'error: the server doesn\'t have a resource type ' \
        '"nosuchkinds"'
    assert no_type.stderr.startswith("error: You must specify the type of resource to get.")
    assert "No such option: --bogus" in bad_flag.stderr and "arkctl get -h" in bad_flag.stderr
    assert 'output format "yamlx"' in bad_output.stderr
    assert "invalid timeout value" in timeout.stderr
    assert all_name.stderr.strip() == \
        "error: a resource cannot be retrieved by name across all namespaces"
    for done in (refused, unknown, no_type, bad_flag, bad_output, timeout, all_name):
        assert done.returncode == 1 and done.stdout == "", done


def test_shell_completion(config_file: Path) -> None:
    def complete(words: str) -> list[str]:
        env = {"_ARKCTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        return Arkctl(None, env=env)().stdout.split()

    # The shell is detected from the parent processes: run it from bash (`; true` keeps bash
    # from exec'ing arkctl in its place).
    shown = subprocess.run(["bash", "-c", f"{ARKCTL} --show-completion; true"],
                           capture_output=True, text=True, check=True, timeout=30)
    script = shown.stdout
    assert "complete -o default -F _arkctl_completion arkctl" in script
    assert complete("arkctl get po,de") == ["po,deploy", "po,deployment", "po,deployments"]
    assert complete("arkctl delete dep") == ["deploy", "deployment", "deployments"]
