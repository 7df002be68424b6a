"""kubectl-style names of resource types (`po`, `pod`, `pods`, `Pod`, `deployments.apps`,
`pods,deploy`, `all`) and of objects (`TYPE NAME...`, `TYPE/NAME`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import typer

from arktos.api.kinds import REGISTRY
from arktos.api.resources import ResourceType
from arktos.cli.arkctl.errors import CliError


def _names(rtype: ResourceType) -> set[str]:
    return {rtype.plural, rtype.singular, rtype.kind.lower(), *rtype.short_names}


def _group_matches(rtype: ResourceType, group: str) -> bool:
    return not group or group in (rtype.group, f"{rtype.version}.{rtype.group}".rstrip("."))


def resolve_type(word: str) -> ResourceType:
    """The served type that `word` names: plural, singular, short name or Kind (any case),
    optionally qualified by group (`deployments.apps`, `deploy.v1.apps`)."""
    name, _, group = word.strip().lower().partition(".")
    for rtype in REGISTRY:
        if name in _names(rtype) and _group_matches(rtype, group):
            return rtype
    raise CliError(f'the server doesn\'t have a resource type "{word}"')


def resolve_types(words: str) -> list[ResourceType]:
    """A comma-separated list of types; the category `all` expands as kubectl's does."""
    out: list[ResourceType] = []
    for word in filter(None, words.split(",")):
        found = category(word.lower()) or [resolve_type(word)]
        out += [t for t in found if t not in out]
    return out


def category(name: str) -> list[ResourceType]:
    return [t for t in REGISTRY if name in t.categories]


def kind_name(rtype: ResourceType) -> str:
    """`pod`, `deployment.apps`: how kubectl prefixes object names."""
    return f"{rtype.singular}.{rtype.group}" if rtype.group else rtype.singular


def object_ref(rtype: ResourceType, name: str) -> str:
    """`pod/p1`, `deployment.apps/web` (the `-o name` form)."""
    return f"{kind_name(rtype)}/{name}"


@dataclass(frozen=True)
class Target:
    """One resource type and the names asked for (none: every object in scope)."""

    rtype: ResourceType
    names: tuple[str, ...] = ()


def parse_targets(args: list[str], verb: str = "get") -> list[Target]:
    """`TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`, grouped by type in order of mention."""
    if not args:
        raise CliError(f"You must specify the type of resource to {verb}. Use "
                       '"arkctl api-resources" for a complete list of supported resources.')
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError("there is no need to specify a resource type as a separate argument "
                           "when passing arguments in resource/name form (e.g. 'arkctl "
                           f"{verb} resource/<resource_name>' instead of 'arkctl {verb} "
                           "resource resource/<resource_name>')")
        return _slashed(args)
    types, names = resolve_types(args[0]), tuple(args[1:])
    if not all(names):
        raise CliError("resource name may not be empty")
    return [Target(t, names) for t in types]


def _slashed(args: Iterable[str]) -> list[Target]:
    grouped: dict[str, tuple[ResourceType, list[str]]] = {}
    for arg in args:
        word, _, name = arg.partition("/")
        if not name:
            raise CliError(f"arguments in resource/name form must have a single resource and "
                           f"name: {arg}")
        rtype = resolve_type(word)
        grouped.setdefault(rtype.qualified, (rtype, []))[1].append(name)
    return [Target(rtype, tuple(names)) for rtype, names in grouped.values()]


def complete_types(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of the first argument, `TYPE[,TYPE]`: plurals, singulars, short
    names (object names that follow are not completed)."""
    if ctx.params.get("args"):
        return []
    return type_words(incomplete)


def type_words(incomplete: str) -> list[str]:
    """The type names that complete `incomplete` (after its last comma)."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    words = sorted({w for t in REGISTRY for w in (t.plural, t.singular, *t.short_names)})
    return [prefix + w for w in words if w.startswith(last.lower())]
