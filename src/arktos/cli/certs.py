"""`arktos certs`: client certificates signed by the cluster CA, delivered as kubeconfigs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from cryptography import x509

from arktos.certs import PkiError, issue_client_cert, load_pki, write_kubeconfig_for

DEFAULT_SERVER = "https://127.0.0.1:6443"

certs_app = typer.Typer(help="Client certificates signed by the cluster CA.",
                        no_args_is_help=True, add_completion=False)


@certs_app.callback()
def _certs() -> None:
    """Client certificates signed by the cluster CA."""


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def default_server(data_dir: Path) -> str:
    """The server of DATA_DIR/admin.kubeconfig's current context, else DEFAULT_SERVER."""
    try:
        config: Any = yaml.safe_load((data_dir / "admin.kubeconfig").read_text())
    except (OSError, yaml.YAMLError):
        return DEFAULT_SERVER
    if not isinstance(config, dict):
        return DEFAULT_SERVER
    contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or []}
    wanted = contexts.get(config.get("current-context"), {}).get("cluster")
    for entry in config.get("clusters") or []:
        server = (entry.get("cluster") or {}).get("server")
        if server and (wanted is None or entry.get("name") == wanted):
            return str(server)
    return DEFAULT_SERVER


DataDir = Annotated[Path, typer.Option("--data-dir", help="The cluster's data directory "
                                       "(holds pki/ca.crt and pki/ca.key).")]
User = Annotated[str, typer.Option("--user", help="User name (the certificate's CN).")]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant (O=tenant:NAME).")]
Groups = Annotated[list[str] | None, typer.Option("--group", help="A group (an O); repeatable.")]
Days = Annotated[int, typer.Option("--days", min=1, help="Days the certificate is valid.")]
Out = Annotated[Path, typer.Option("--kubeconfig", help="Where to write the kubeconfig.")]
Server = Annotated[str, typer.Option("--server", help="API server URL (default: the server of "
                                     f"DATA_DIR/admin.kubeconfig, else {DEFAULT_SERVER}).")]
Namespace = Annotated[str, typer.Option("--namespace", help="The context's namespace.")]


@certs_app.command("issue")
def issue(data_dir: DataDir, user: User, tenant: Tenant, kubeconfig: Out,
          group: Groups = None, days: Days = 365, server: Server = "",
          namespace: Namespace = "default") -> None:
    """Sign a client certificate for USER in TENANT and write a kubeconfig that uses it."""
    if not tenant:
        raise _fail("--tenant must not be empty")
    try:
        pki = load_pki(data_dir)
        cert, key = issue_client_cert(pki, user=user, tenant=tenant, groups=group or [],
                                      days=days)
    except (PkiError, ValueError) as exc:
        raise _fail(str(exc)) from None
    url = server or default_server(data_dir)
    try:
        write_kubeconfig_for(pki, server=url, user=user, tenant=tenant, cert_pem=cert,
                             key_pem=key, out=kubeconfig, namespace=namespace)
    except OSError as exc:
        raise _fail(f"cannot write {kubeconfig}: {exc}") from None
    until = x509.load_pem_x509_certificate(cert).not_valid_after_utc
    groups = ", ".join(group or []) or "none"
    typer.echo(f"wrote {kubeconfig}: user {user!r} in tenant {tenant!r} (groups: {groups}), "
               f"server {url}, context {tenant}-{user}@arktos, valid until "
               f"{until:%Y-%m-%d %H:%M} UTC")
    if url.startswith("http://"):
        typer.secho(f"warning: {url} is plain HTTP; client certificates need https://",
                    err=True, fg=typer.colors.YELLOW)
