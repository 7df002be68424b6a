"""`arkctl create -f FILE` and the generators `create namespace|tenant|deployment`."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from arktos.cli.arkctl import manifests
from arktos.cli.arkctl.errors import fail
from arktos.cli.arkctl.options import FilenameOpt, RecursiveOpt, with_globals
from arktos.cli.arkctl.resolve import object_ref, resolve_type
from arktos.cli.arkctl.session import Session, run
from arktos.client.rest import ApiError

Obj = dict[str, Any]
app = typer.Typer(help="Create a resource from a file or from stdin, or with a generator.",
                  invoke_without_command=True, no_args_is_help=False)


async def _create_files(session: Session, paths: list[str], recursive: bool) -> None:
    for m in manifests.read(paths, recursive=recursive, verb="create"):
        tenant, namespace = manifests.place(m, namespace=session.namespace,
                                            flag_namespace=session.flags.namespace,
                                            flag_tenant=session.flags.tenant)
        try:
            made = await session.resource(m.rtype).create(m.obj, namespace=namespace,
                                                          tenant=tenant)
        except ApiError as exc:
            session.failures.report(exc, f'error when creating "{m.source}"')
            continue
        print(object_ref(m.rtype, made["metadata"]["name"]), "created", flush=True)


async def _create(session: Session, kind: str, obj: Obj, namespaced: bool = False) -> None:
    rtype = resolve_type(kind)
    namespace = session.object_namespace(rtype) if namespaced else ""
    made = await session.resource(rtype).create(obj, namespace=namespace)
    print(object_ref(rtype, made["metadata"]["name"]), "created")


@app.callback()
@with_globals()
def create(ctx: typer.Context, filename: FilenameOpt = None,
           recursive: RecursiveOpt = False) -> None:
    """Create resources from files (-f) or stdin, or with one of the generators below."""
    if ctx.invoked_subcommand is not None:
        return
    if not filename:
        fail("must specify one of -f and -k")
    run(lambda s: _create_files(s, filename, recursive))


Name = Annotated[str, typer.Argument(help="Name of the new object.", show_default=False)]


@with_globals()
def namespace(name: Name) -> None:
    """Create a namespace (in the tenant of the context, or of --tenant)."""
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    run(lambda s: _create(s, "namespaces", obj))


@with_globals()
def tenant(name: Name, storage_cluster: Annotated[str, typer.Option(
        "--storage-cluster", metavar="ID",
        help="Storage cluster id (0-63) holding the tenant's data.",
        show_default=False)] = "") -> None:
    """Create a tenant (Arktos)."""
    obj: Obj = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": name}, "spec": {}}
    if storage_cluster:
        obj["spec"]["storageClusterId"] = storage_cluster
    run(lambda s: _create(s, "tenants", obj))


def container_name(image: str) -> str:
    """kubectl's container name for an image: its last path part without tag or digest."""
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-") or "app"


def deployment_object(name: str, images: list[str], replicas: int, port: int | None) -> Obj:
    """The Deployment `kubectl create deployment` generates (label app=NAME)."""
    containers: list[Obj] = [{"name": container_name(i), "image": i} for i in images]
    if port is not None:
        containers[0]["ports"] = [{"containerPort": port}]
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": containers}}}}


@with_globals()
def deployment(name: Name,
               image: Annotated[list[str], typer.Option(
                   "--image", metavar="IMAGE", help="Image of a container (repeat for several).",
                   show_default=False)],
               replicas: Annotated[int, typer.Option("--replicas", "-r", min=0, metavar="N")] = 1,
               port: Annotated[int | None, typer.Option(
                   "--port", metavar="PORT",
                   help="The container port to expose.", show_default=False)] = None,
               ) -> None:
    """Create a deployment with the given name and image(s)."""
    obj = deployment_object(name, image, replicas, port)
    run(lambda s: _create(s, "deployments.apps", obj, namespaced=True))


for _name, _func, _aliases in (("namespace", namespace, ("ns",)), ("tenant", tenant, ("te",)),
                               ("deployment", deployment, ("deploy",))):
    app.command(_name)(_func)
    for _alias in _aliases:
        app.command(_alias, hidden=True)(_func)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="create")
