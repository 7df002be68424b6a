"""The `arkctl` application: global flags, and the commands of the sibling modules."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.main import get_command

from arktos.cli.arkctl import (
    action,
    apply,
    config,
    create,
    delete,
    describe,
    discovery,
    edit,
    get,
    logs,
)
from arktos.cli.arkctl.options import (
    AllNamespacesOpt,
    AllTenantsOpt,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    RequestTimeoutOpt,
    TenantOpt,
    bool_flags,
    normalize_args,
    show_help_when_bare,
    store_globals,
)

_HELP = """arkctl controls Arktos clusters: kubectl's commands and flags, with tenants.

Every namespaced object lives in a tenant's namespace; the context's `tenant` (or -E/--tenant)
chooses the tenant, -T/--all-tenants lists across them."""


class ArkctlApp(typer.Typer):
    """Typer with kubectl's conventions: usage errors exit 1, `--flag=false` is understood."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and "args" not in kwargs:
            command = get_command(self)
            kwargs["args"] = normalize_args(sys.argv[1:], bool_flags(command))
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as exc:
            if exc.code == 2:
                raise SystemExit(1) from None
            raise


app = ArkctlApp(name="arkctl", help=_HELP, invoke_without_command=True, add_completion=True,
                rich_markup_mode=None, pretty_exceptions_enable=False,
                context_settings={"help_option_names": ["-h", "--help"]})


@app.callback()
def main(ctx: typer.Context, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
         namespace: NamespaceOpt = None, tenant: TenantOpt = None,
         all_namespaces: AllNamespacesOpt = False, all_tenants: AllTenantsOpt = False,
         request_timeout: RequestTimeoutOpt = None) -> None:
    """arkctl controls Arktos clusters (kubectl's commands and flags, with tenants)."""
    store_globals(fresh=True, kubeconfig=kubeconfig, context=context, namespace=namespace,
                  tenant=tenant, all_namespaces=all_namespaces, all_tenants=all_tenants,
                  request_timeout=request_timeout)
    show_help_when_bare(ctx)


for _module in (get, describe, create, apply, edit, delete, logs, action, config, discovery):
    _module.register(app)

if __name__ == "__main__":
    app()
