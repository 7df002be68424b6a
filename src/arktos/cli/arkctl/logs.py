"""`arkctl logs POD`: GET pods/{name}/log (container, follow, tailLines, previous,
timestamps), streamed to stdout as it arrives. The node agent serves the logs."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.options import with_globals
from arktos.cli.arkctl.resolve import resolve_type
from arktos.cli.arkctl.session import Session, run

Obj = dict[str, Any]
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def pick_container(pod: Obj, wanted: str) -> str:
    """The container to read: `wanted` (checked), else the default one; "" for a VM pod."""
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]
    name = pod["metadata"]["name"]
    if wanted:
        if names and wanted not in names:
            raise CliError(f"container {wanted} is not valid for pod {name}")
        return wanted
    if not names:
        return ""
    preferred = ((pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER) or "")
    chosen = preferred if preferred in names else names[0]
    if len(names) > 1:
        print(f'Defaulted container "{chosen}" out of: {", ".join(names)}', file=sys.stderr)
    return chosen


def log_params(container: str, follow: bool, tail: int, previous: bool,
               timestamps: bool) -> dict[str, Any]:
    """The query of a log request (unset values left out)."""
    return {"container": container, "follow": follow or None,
            "tailLines": tail if tail >= 0 else None, "previous": previous or None,
            "timestamps": timestamps or None}


async def _logs(session: Session, pod_ref: str, params: dict[str, Any]) -> None:
    word, _, name = pod_ref.rpartition("/")
    if word and resolve_type(word).kind != "Pod":
        raise CliError("logs are served for pods only")
    if not name:
        raise CliError("resource name may not be empty")
    client = session.resource(resolve_type("pods"))
    namespace = session.object_namespace(client.rtype)
    pod = await client.get(name, namespace=namespace)
    params["container"] = pick_container(pod, params["container"])
    path = client.path(namespace=namespace, name=name, subresource="log")
    out = sys.stdout.buffer
    async with session.stream(path, params, accept="*/*") as body:
        while chunk := await body.readany():
            out.write(chunk)
            out.flush()


def register(app: typer.Typer) -> None:
    """Add `logs` to the app."""
    @app.command()
    @with_globals()
    def logs(pod: Annotated[str, typer.Argument(help="POD or pod/POD", metavar="POD")],
             container: Annotated[str, typer.Option(
                 "--container", "-c", metavar="NAME",
                 help="Container to read (default: the pod's default "
                 "container).")] = "",
             follow: Annotated[bool, typer.Option(
                 "--follow", "-f", help="Stream new output as it comes.")] = False,
             tail: Annotated[int, typer.Option(
                 "--tail", metavar="LINES", help="Lines of recent output to show (-1: all).")] = -1,
             previous: Annotated[bool, typer.Option(
                 "--previous", "-p", help="The previous instance of the container.")] = False,
             timestamps: Annotated[bool, typer.Option(
                 "--timestamps", help="Prefix each line with its timestamp.")] = False,
             ) -> None:
        """Print the logs of a container in a pod (served by the node agent)."""
        params = log_params(container, follow, tail, previous, timestamps)
        run(lambda s: _logs(s, pod, params), interrupted=0 if follow else 130)
