"""`arkctl delete`: by type and names, TYPE/NAME, -f files, --all or -l; cascading policy,
grace period, and (like kubectl) waiting until the objects are gone."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

import typer

from arktos.api.resources import ResourceType
from arktos.cli.arkctl import manifests
from arktos.cli.arkctl.errors import CliError, warn
from arktos.cli.arkctl.options import FilenameOpt, RecursiveOpt, SelectorOpt, with_globals
from arktos.cli.arkctl.resolve import complete_types, kind_name, parse_targets
from arktos.cli.arkctl.session import Session, run
from arktos.client.rest import ApiError

CASCADE = {"background": "Background", "true": "Background", "orphan": "Orphan",
           "false": "Orphan", "foreground": "Foreground"}
_POLL = 0.2


@dataclass(frozen=True)
class DeleteOptions:
    cascade: str = "Background"
    grace_period: int = -1
    force: bool = False
    wait: bool = True
    timeout: float = 0
    ignore_not_found: bool = False


@dataclass(frozen=True)
class Doomed:
    """One object to delete: where it is, and its uid once the delete was accepted."""

    rtype: ResourceType
    name: str
    tenant: str | None
    namespace: str
    uid: str = ""


def _options(cascade: str, grace_period: int, force: bool, wait: bool, timeout: float,
             ignore_not_found: bool) -> DeleteOptions:
    if cascade.lower() not in CASCADE:
        raise CliError(f'invalid cascade value ({cascade}). Must be "background", '
                       '"foreground", or "orphan".')
    if force and grace_period < 0:
        grace_period = 0
    elif grace_period == 0 and not force:
        grace_period = 1  # kubectl: 0 only with --force
    return DeleteOptions(CASCADE[cascade.lower()], grace_period, force, wait, timeout,
                         ignore_not_found)


async def _listed(session: Session, rtype: ResourceType, selector: str) -> list[Doomed]:
    scope = session.list_scope(rtype)
    listed = await session.resource(rtype).list(namespace=scope.namespace, tenant=scope.tenant,
                                                label_selector=selector, limit=500)
    return [Doomed(rtype, o["metadata"]["name"], o["metadata"].get("tenant") or None,
                   o["metadata"].get("namespace", "")) for o in listed.items]


async def _targets(session: Session, args: list[str], files: list[str], recursive: bool,
                   select: tuple[bool, str]) -> list[Doomed]:
    """What to delete: -f files, TYPE NAME..., TYPE/NAME, or TYPE with --all / -l."""
    if files and args:
        raise CliError("name resources either with -f or with arguments, not both")
    if files:
        found = []
        for m in manifests.read(files, recursive=recursive, verb="delete"):
            if not m.name:
                raise CliError(f'error when deleting "{m.source}": resource name may not be '
                               "empty")
            tenant, namespace = manifests.place(m, namespace=session.namespace,
                                                flag_namespace=session.flags.namespace,
                                                flag_tenant=session.flags.tenant)
            found.append(Doomed(m.rtype, m.name, tenant, namespace))
        return found
    everything, selector = select
    doomed: list[Doomed] = []
    for target in parse_targets(args, "delete"):
        if target.names:
            namespace = session.object_namespace(target.rtype)
            doomed += [Doomed(target.rtype, n, None, namespace) for n in target.names]
        elif everything or selector:
            doomed += await _listed(session, target.rtype, selector)
        else:
            raise CliError("resource(s) were provided, but no name was specified")
    return doomed


async def _delete_one(session: Session, d: Doomed, opts: DeleteOptions) -> Doomed | None:
    try:
        gone = await session.resource(d.rtype).delete(
            d.name, namespace=d.namespace, tenant=d.tenant, propagation_policy=opts.cascade,
            grace_period_seconds=opts.grace_period if opts.grace_period >= 0 else None)
    except ApiError as exc:
        if not (exc.not_found and opts.ignore_not_found):
            session.failures.report(exc)
        return None
    verb = "force deleted" if opts.force else "deleted"
    print(f'{kind_name(d.rtype)} "{d.name}" {verb}', flush=True)
    uid = str((gone.get("metadata") or {}).get("uid") or "") if isinstance(gone, dict) else ""
    return Doomed(d.rtype, d.name, d.tenant, d.namespace, uid)


async def _gone(session: Session, d: Doomed) -> bool:
    try:
        live = await session.resource(d.rtype).get(d.name, namespace=d.namespace,
                                                   tenant=d.tenant)
    except ApiError as exc:
        if exc.not_found:
            return True
        raise
    return bool(d.uid) and live.get("metadata", {}).get("uid") != d.uid


async def _wait(session: Session, doomed: list[Doomed], timeout: float) -> None:
    """Poll until every object is gone (or replaced by a new one with the same name)."""
    from rich.console import Console  # only here: keeps every other command's start fast

    deadline = time.monotonic() + timeout if timeout > 0 else None
    left = list(doomed)
    with Console(stderr=True).status(f"waiting for {len(left)} object(s) to be deleted"):
        while left:
            left = [d for d in left if not await _gone(session, d)]
            if left and deadline is not None and time.monotonic() > deadline:
                names = ", ".join(f"{kind_name(d.rtype)}/{d.name}" for d in left)
                raise CliError(f"timed out waiting for the deletion of {names}")
            if left:
                await asyncio.sleep(_POLL)


async def _delete(session: Session, targets: list[Doomed], opts: DeleteOptions) -> None:
    if opts.force:
        warn("Immediate deletion does not wait for confirmation that the running resource "
             "has been terminated. The resource may continue to run on the cluster "
             "indefinitely.")
    accepted = [d for d in [await _delete_one(session, t, opts) for t in targets] if d]
    if opts.wait and accepted:
        await _wait(session, accepted, opts.timeout)
    if not targets and not session.failures.count:
        print("No resources found", flush=True)


CascadeOpt = Annotated[str, typer.Option(
    "--cascade", metavar="POLICY",
    help='"background" (default), "orphan" or "foreground": what happens to '
    "dependents.")]
GraceOpt = Annotated[int, typer.Option(
    "--grace-period", metavar="SECONDS",
    help="Seconds given to the resource to terminate gracefully (-1: its "
    "default; 0 only with --force).")]


def register(app: typer.Typer) -> None:
    """Add `delete` to the app."""
    @app.command()
    @with_globals()
    def delete(args: Annotated[list[str] | None, typer.Argument(
            help="TYPE NAME..., TYPE/NAME..., or TYPE with --all or -l",
            autocompletion=complete_types, metavar="[TYPE [NAME...]]",
            show_default=False)] = None,
            filename: FilenameOpt = None, recursive: RecursiveOpt = False,
            everything: Annotated[bool, typer.Option(
                "--all", help="Delete every object of the types in the namespace.")] = False,
            selector: SelectorOpt = "", cascade: CascadeOpt = "background",
            grace_period: GraceOpt = -1,
            force: Annotated[bool, typer.Option(
                "--force", help="Delete at once (grace period 0).")] = False,
            wait: Annotated[bool, typer.Option(
                "--wait/--no-wait", help="Wait until the objects are gone.")] = True,
            timeout: Annotated[float, typer.Option(
                "--timeout", metavar="SECONDS",
                help="Seconds to wait for the deletion (0: no limit).")] = 0,
            ignore_not_found: Annotated[bool, typer.Option(
                "--ignore-not-found", help="Missing objects are no error.")] = False) -> None:
        """Delete resources by file names, stdin, types and names, or types and selectors."""

        async def body(session: Session) -> None:
            opts = _options(cascade, grace_period, force, wait, timeout, ignore_not_found)
            targets = await _targets(session, args or [], filename or [], recursive,
                                     (everything, selector))
            await _delete(session, targets, opts)

        run(body)
