"""`arkctl apply -f`: kubectl's client-side apply (last-applied annotation, three-way merge
patch; prints created / configured / unchanged)."""

from __future__ import annotations

import typer

from arktos.cli.arkctl import manifests
from arktos.cli.arkctl.errors import warn
from arktos.cli.arkctl.manifests import Manifest
from arktos.cli.arkctl.options import FilenameOpt, RecursiveOpt, with_globals
from arktos.cli.arkctl.session import Session, run
from arktos.cli.arkctl.threeway import last_applied, three_way_patch, with_last_applied
from arktos.client.rest import MERGE_PATCH, ApiError


def _missing_annotation(m: Manifest) -> None:
    warn(f"resource {m.rtype.plural}/{m.name} is missing the "
         "kubectl.kubernetes.io/last-applied-configuration annotation which is required by "
         "arkctl apply. arkctl apply should only be used on resources created declaratively "
         "by either arkctl create --save-config or arkctl apply. The missing annotation will "
         "be patched automatically.")


async def apply_one(session: Session, m: Manifest) -> str:
    """Apply one object; returns what happened (`created`, `configured`, `unchanged`)."""
    tenant, namespace = manifests.place(m, namespace=session.namespace,
                                        flag_namespace=session.flags.namespace,
                                        flag_tenant=session.flags.tenant)
    client = session.resource(m.rtype)
    modified = with_last_applied(m.obj)
    try:
        live = await client.get(m.name, namespace=namespace, tenant=tenant)
    except ApiError as exc:
        if not exc.not_found:
            raise
        await client.create(modified, namespace=namespace, tenant=tenant)
        return "created"
    original = last_applied(live)
    if original is None:
        _missing_annotation(m)
    patch = three_way_patch(original, modified, live)
    if not patch:
        return "unchanged"
    await client.patch(m.name, patch, namespace=namespace, tenant=tenant,
                       content_type=MERGE_PATCH)
    return "configured"


async def _apply(session: Session, paths: list[str], recursive: bool) -> None:
    for m in manifests.read(paths, recursive=recursive):
        if not m.name:
            session.failures.report(ValueError(
                f'error when applying "{m.source}": the name of a {m.rtype.kind} is required '
                "(generateName is not supported by apply)"))
            continue
        try:
            result = await apply_one(session, m)
        except ApiError as exc:
            session.failures.report(exc, f'error when applying "{m.ref}" from "{m.source}"')
            continue
        print(f"{m.ref} {result}", flush=True)


def register(app: typer.Typer) -> None:
    """Add `apply` to the app."""
    @app.command()
    @with_globals()
    def apply(filename: FilenameOpt = None, recursive: RecursiveOpt = False) -> None:
        """Apply a configuration to resources from files or stdin (client-side apply)."""
        run(lambda s: _apply(s, filename or [], recursive))
