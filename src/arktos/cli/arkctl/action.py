"""`arkctl action reboot|snapshot|restore POD`: Arktos' VM actions, POSTed to
pods/{name}/action as a CustomAction; the pod's node agent carries them out, and the command
waits for the result (phase Succeeded or Failed) unless told not to."""

from __future__ import annotations

import asyncio
import enum
import time
from typing import Annotated, Any

import typer

from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.options import with_globals
from arktos.cli.arkctl.resolve import object_ref, resolve_type
from arktos.cli.arkctl.session import Session, run

Obj = dict[str, Any]


class Operation(enum.StrEnum):
    reboot = "reboot"
    snapshot = "snapshot"
    restore = "restore"


def custom_action(op: Operation, snapshot: str, delay: int) -> Obj:
    """The CustomAction body Arktos' API takes for `op`."""
    body: Obj = {"apiVersion": "v1", "kind": "CustomAction", "operation": op.value}
    if op is Operation.reboot:
        body["rebootParams"] = {"delayInSeconds": delay}
    elif not snapshot:
        raise CliError(f"--snapshot is required for {op.value}")
    elif op is Operation.snapshot:
        body["snapshotParams"] = {"snapshotName": snapshot}
    else:
        body["restoreParams"] = {"snapshotID": snapshot}
    return body


async def _action_name(session: Session, pod: str, namespace: str, uid: str) -> str:
    """The name of the Action object the server created (found by its uid)."""
    listed = await session.resource(resolve_type("actions")).list(
        namespace=namespace, field_selector=f"spec.podName={pod}")
    for item in listed.items:
        if item["metadata"].get("uid") == uid:
            return str(item["metadata"]["name"])
    return ""


_POLL = 0.25


def outcome(action: Obj) -> str | None:
    """The line to print for a finished action (None while it runs). Pure."""
    status = action.get("status") or {}
    if status.get("phase") not in ("Succeeded", "Failed"):
        return None
    if status["phase"] == "Failed":
        return f"failed: {status.get('error') or 'no reason given'}"
    snap = (status.get("snapshotStatus") or {}).get("snapshotID")
    return f"succeeded (snapshot ID: {snap})" if snap else "succeeded"


async def _wait(session: Session, name: str, namespace: str, timeout: float) -> None:
    """Poll the action until it finishes; a failure raises `CliError`."""
    from rich.console import Console  # only here: keeps every other command's start fast

    actions = session.resource(resolve_type("actions"))
    ref = object_ref(resolve_type("actions"), name)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    with Console(stderr=True).status(f"waiting for the node agent to carry out {ref}"):
        while True:
            line = outcome(await actions.get(name, namespace=namespace))
            if line is not None:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(f"timed out waiting for {ref}; see: arkctl get {ref} -o yaml")
            await asyncio.sleep(_POLL)
    if line.startswith("failed"):
        raise CliError(f"{ref} {line}")
    print(f"{ref} {line}")


async def _act(session: Session, pod: str, op: Operation, snapshot: str, delay: int,
               wait: bool, timeout: float) -> None:
    body = custom_action(op, snapshot, delay)
    if not pod:
        raise CliError("resource name may not be empty")
    pods = session.resource(resolve_type("pods"))
    namespace = session.object_namespace(pods.rtype)
    path = pods.path(namespace=namespace, name=pod, subresource="action")
    status = await session.api.request("POST", path, body=body)
    details = (status or {}).get("details") or {}
    name = await _action_name(session, pod, namespace, str(details.get("uid", ""))) \
        or str(details.get("name", ""))
    print(f"{object_ref(resolve_type('actions'), name)} created")
    if wait and name:
        await _wait(session, name, namespace, timeout)


def register(app: typer.Typer) -> None:
    """Add `action` to the app."""
    @app.command()
    @with_globals()
    def action(operation: Annotated[Operation, typer.Argument(help="The VM action.")],
               pod: Annotated[str, typer.Argument(help="The pod (of a VM).", metavar="POD")],
               snapshot: Annotated[str, typer.Option(
                   "--snapshot", metavar="NAME",
                   help="snapshot: the name of the new snapshot; restore: the "
                   "snapshot ID to restore.")] = "",
               delay: Annotated[int, typer.Option(
                   "--delay", min=0, metavar="SECONDS",
                   help="reboot: seconds to wait before rebooting.")] = 0,
               wait: Annotated[bool, typer.Option(
                   help="Wait until the node agent has carried the action out.")] = True,
               timeout: Annotated[float, typer.Option(
                   metavar="SECONDS", help="How long to wait (0: for ever).")] = 300,
               ) -> None:
        """Ask a VM pod's node agent to reboot it, snapshot it, or restore a snapshot, and
        wait for the result."""
        run(lambda s: _act(s, pod.rpartition("/")[2], operation, snapshot, delay, wait,
                           timeout))
