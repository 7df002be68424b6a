"""`arkctl action reboot|snapshot|restore POD`: Arktos' VM actions, POSTed to
pods/{name}/action as a CustomAction; the pod's node agent carries them out."""

from __future__ import annotations

import enum
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


async def _act(session: Session, pod: str, op: Operation, snapshot: str, delay: int) -> None:
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
               ) -> None:
        """Ask a VM pod's node agent to reboot it, snapshot it, or restore a snapshot."""
        run(lambda s: _act(s, pod.rpartition("/")[2], operation, snapshot, delay))
