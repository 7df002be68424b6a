"""Global flags (`--kubeconfig`, `-n`, `-E`, `-A`, `-T`, ...), accepted before the command and
after it as kubectl does, and kubectl's `--flag=true|false` spelling of boolean flags."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])
_PANEL = "Global options"


@dataclass(frozen=True)
class Globals:
    """The global flags of one invocation."""

    kubeconfig: str = ""
    context: str = ""
    namespace: str = ""
    tenant: str = ""
    all_namespaces: bool = False
    all_tenants: bool = False
    request_timeout: str = ""

    def merged(self, **given: Any) -> Globals:
        """A copy with the flags given on the command line (not None/False/"") applied."""
        return replace(self, **{k: v for k, v in given.items() if v not in (None, False, "")})


KubeconfigOpt = Annotated[str | None, typer.Option(
    "--kubeconfig", metavar="PATH",
    help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config).",
    rich_help_panel=_PANEL, show_default=False)]
ContextOpt = Annotated[str | None, typer.Option(
    "--context", metavar="NAME", help="The kubeconfig context to use.", rich_help_panel=_PANEL,
    show_default=False)]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", "-n", metavar="NAME",
    help="The namespace of the request (default: the context's).",
    rich_help_panel=_PANEL, show_default=False)]
TenantOpt = Annotated[str | None, typer.Option(
    "--tenant", "-E", metavar="NAME",
    help="The tenant of the request (overrides the context's tenant).",
    rich_help_panel=_PANEL, show_default=False)]
AllNamespacesOpt = Annotated[bool, typer.Option(
    "--all-namespaces", "-A", help="Across every namespace of the tenant.",
    rich_help_panel=_PANEL)]
AllTenantsOpt = Annotated[bool, typer.Option(
    "--all-tenants", "-T", help="Across every tenant (adds a TENANT column).",
    rich_help_panel=_PANEL)]
RequestTimeoutOpt = Annotated[str | None, typer.Option(
    "--request-timeout", metavar="DURATION",
    help="How long to wait for a request, e.g. 5s, 1m, 30 (seconds); "
    "0: no limit. Ends a watch cleanly.", rich_help_panel=_PANEL, show_default=False)]

_ANNOTATIONS: dict[str, Any] = {
    "kubeconfig": KubeconfigOpt, "context": ContextOpt, "namespace": NamespaceOpt,
    "tenant": TenantOpt, "all_namespaces": AllNamespacesOpt, "all_tenants": AllTenantsOpt,
    "request_timeout": RequestTimeoutOpt,
}
_PREFIX = "global_"


def _global_params(names: Iterable[str]) -> list[inspect.Parameter]:
    return [inspect.Parameter(_PREFIX + name, inspect.Parameter.KEYWORD_ONLY,
                              default=False if name.startswith("all_") else None,
                              annotation=_ANNOTATIONS[name]) for name in names]


_current = [Globals()]


def store_globals(*, fresh: bool = False, **given: Any) -> None:
    """Record the flags given (the app callback starts `fresh`; commands add theirs)."""
    _current[0] = (Globals() if fresh else _current[0]).merged(**given)


def current_globals() -> Globals:
    """The global flags of this invocation, wherever on the command line they were given."""
    return _current[0]


def with_globals(*, only: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Add the global flags (or `only` these) to a command's own options."""
    names = only or tuple(f.name for f in fields(Globals))

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(_PREFIX + name) for name in names}
            store_globals(**given)
            return func(*args, **kwargs)

        params = [*sig.parameters.values(), *_global_params(names)]
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def show_help_when_bare(ctx: typer.Context) -> None:
    """A command group run without a command prints its help (exit code 0, as kubectl)."""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def bool_flags(command: Any) -> dict[str, str | None]:
    """Every boolean flag of a click command tree: `--flag` -> its `--no-flag` (or None)."""
    found: dict[str, str | None] = {}
    for param in command.params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            negated = param.secondary_opts[0] if param.secondary_opts else None
            found.update({opt: negated for opt in param.opts if opt.startswith("--")})
    for sub in (getattr(command, "commands", None) or {}).values():
        found.update(bool_flags(sub))
    return found


OPTIONAL_VALUES: dict[str, tuple[str, frozenset[str]]] = {
    "--cascade": ("background", frozenset({"background", "orphan", "foreground", "true",
                                           "false"})),
}
"""Options whose value kubectl lets you leave out: option -> (implied value, its values)."""


def normalize_args(args: list[str], flags: dict[str, str | None]) -> list[str]:
    """kubectl's spellings as click understands them: `--wait=false` -> `--no-wait`,
    `--watch=true` -> `--watch`, a bare `--cascade` -> `--cascade=background`."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        if eq and name in flags and value.lower() in ("true", "false"):
            negated = flags[name]
            if value.lower() == "true":
                out.append(name)
            elif negated:
                out.append(negated)
            continue
        if arg in OPTIONAL_VALUES:
            implied, allowed = OPTIONAL_VALUES[arg]
            following = args[i + 1] if i + 1 < len(args) else ""
            if following not in allowed:
                out.append(f"{arg}={implied}")
                continue
        out.append(arg)
    return out


FilenameOpt = Annotated[list[str] | None, typer.Option(
    "--filename", "-f", metavar="PATH",
    help="Files, folders (their .yaml/.yml/.json files) or - for stdin.",
    show_default=False)]
RecursiveOpt = Annotated[bool, typer.Option(
    "--recursive", "-R", help="Process the folders given with -f recursively.")]
SelectorOpt = Annotated[str, typer.Option(
    "--selector", "-l", metavar="SELECTOR",
    help="Label selector, e.g. -l 'app=web,tier!=db'.", show_default=False)]
FieldSelectorOpt = Annotated[str, typer.Option(
    "--field-selector", metavar="SELECTOR",
    help="Field selector, e.g. --field-selector status.phase=Running.",
    show_default=False)]
