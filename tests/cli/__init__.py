"""Helpers for the `arkctl` tests: run the real script as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e.rest import Rest

ARKCTL = str(Path(sys.executable).parent / "arkctl")


class Arkctl:
    """`arkctl --kubeconfig <file> ...` as a subprocess (no flag: $KUBECONFIG)."""

    def __init__(self, kubeconfig: Path | str | None,
                 env: dict[str, str] | None = None) -> None:
        self.kubeconfig = str(kubeconfig) if kubeconfig else ""
        self.env = {**os.environ, "NO_COLOR": "1", **(env or {})}

    def argv(self, *args: str) -> list[str]:
        flags = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return [ARKCTL, *flags, *args]

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None,
                 timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True,
                              check=False, timeout=timeout, env={**self.env, **(env or {})})

    def ok(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """stdout of a command that must succeed."""
        done = self(*args, input=input, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def many(self, *calls: tuple[str, ...],
             inputs: Sequence[str | None] = ()) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands run at the same time (each arkctl start costs ~0.4 s);
        `inputs[i]` is the stdin of call i."""
        procs = [subprocess.Popen(self.argv(*c), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=self.env)
                 for c in calls]
        done = []
        for i, (call, proc) in enumerate(zip(calls, procs, strict=True)):
            stdin = inputs[i] if i < len(inputs) else None
            out, err = proc.communicate(stdin or "", timeout=30)
            done.append(subprocess.CompletedProcess(list(call), proc.returncode, out, err))
        return done

    def ok_many(self, *calls: tuple[str, ...], inputs: Sequence[str | None] = ()) -> list[str]:
        """stdout of independent commands that must all succeed."""
        results = self.many(*calls, inputs=inputs)
        for r in results:
            assert r.returncode == 0, (r.args, r.stdout, r.stderr)
        return [r.stdout for r in results]

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def fails(self, *args: str, input: str | None = None) -> str:
        """stderr of a command that must fail with exit code 1 (and print nothing)."""
        done = self(*args, input=input)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        return done.stderr.strip()


def table(text: str) -> list[list[str]]:
    """Table output as rows of cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def new_namespace(server_url: str, prefix: str) -> str:
    """A fresh namespace of the system tenant, made over REST (faster than a process)."""
    name = unique(prefix)
    resp = Rest(server_url).post("/api/v1/namespaces", {"metadata": {"name": name}})
    assert resp.status_code == 201, resp.text
    return name


def configmap(name: str, namespace: str, data: dict[str, str],
              labels: dict[str, str] | None = None) -> str:
    """A ConfigMap manifest as JSON (which is YAML too)."""
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        md["labels"] = labels
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data})


def pod(name: str, *containers: str, labels: dict[str, str] | None = None) -> str:
    """A Pod manifest (YAML) with one busybox container per name."""
    spec = [{"name": c, "image": "busybox:1.36"} for c in containers or ("c",)]
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": labels or {}},
                       "spec": {"containers": spec}})
