"""`arkctl config`: view, current-context, get-contexts, use-context and set-context on the
kubeconfig files (merged as kubectl merges them; writes go to the file holding the entry)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from arktos.cli.arkctl import output as out
from arktos.cli.arkctl.errors import fail
from arktos.cli.arkctl.options import current_globals, show_help_when_bare, with_globals
from arktos.cli.kubeconfig import write_kubeconfig
from arktos.client.config import ConfigError, kubeconfig_paths, merge_kubeconfigs

Doc = dict[str, Any]
app = typer.Typer(help="Modify and view kubeconfig files (contexts carry Arktos' tenant).",
                  invoke_without_command=True)
config_flags = with_globals(only=("kubeconfig", "context"))
OMITTED, REDACTED = "DATA+OMITTED", "REDACTED"
_SECRETS = {"cluster": {"certificate-authority-data": OMITTED},
            "user": {"client-certificate-data": OMITTED, "client-key-data": OMITTED,
                     "token": REDACTED, "password": REDACTED}}


def _paths() -> list[Path]:
    return kubeconfig_paths(current_globals().kubeconfig or None)


def _merged() -> Doc:
    try:
        return merge_kubeconfigs(_paths())
    except ConfigError as exc:
        fail(str(exc))


def redact(config: Doc) -> Doc:
    """kubectl's `config view` without --raw: certificates and keys omitted, tokens and
    passwords redacted."""
    shown = copy.deepcopy(config)
    for section, secrets in _SECRETS.items():
        for entry in shown.get(section + "s") or []:
            body = entry.get(section) or {}
            for key, mask in secrets.items():
                if body.get(key):
                    body[key] = mask
    return shown


def minify(config: Doc, context: str) -> Doc:
    """Only `context` and the cluster and user it names."""
    name = context or config.get("current-context") or ""
    ctx = next((c for c in config["contexts"] if c["name"] == name), None)
    if ctx is None:
        fail(f'cannot locate context "{name}"' if name else "current-context must exist in "
             "order to minify")
    body = ctx.get("context") or {}
    return {**config, "current-context": name, "contexts": [ctx],
            "clusters": [c for c in config["clusters"] if c["name"] == body.get("cluster")],
            "users": [u for u in config["users"] if u["name"] == body.get("user")]}


def _read(path: Path) -> Doc:
    try:
        data = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read kubeconfig {path}: {exc}")
    return data if isinstance(data, dict) else {"apiVersion": "v1", "kind": "Config"}


def default_file(paths: list[Path]) -> Path:
    """Where new entries and current-context go (kubectl's choice)."""
    existing = [p for p in paths if p.exists()]
    return existing[0] if existing else paths[-1]


def holder(section: str, name: str, paths: list[Path]) -> Path | None:
    """The first file defining entry `name` of `section` (the one that wins the merge)."""
    for path in paths:
        if any(isinstance(e, dict) and e.get("name") == name
               for e in _read(path).get(section) or []):
            return path
    return None


@app.callback()
def config(ctx: typer.Context) -> None:
    """Modify and view kubeconfig files (contexts carry Arktos' tenant)."""
    show_help_when_bare(ctx)


@app.command()
@config_flags
def view(raw: Annotated[bool, typer.Option("--raw", help="Show secrets as they are.")] = False,
         minified: Annotated[bool, typer.Option(
             "--minify", help="Only the current context (or --context) and its cluster and "
             "user.")] = False,
         output: Annotated[str, typer.Option("--output", "-o", metavar="FORMAT",
                                             help="yaml or json.")] = "yaml",
         ) -> None:
    """Display the merged kubeconfig settings."""
    merged = _merged()
    config: Doc = {"apiVersion": "v1", "kind": "Config", "preferences": {}, **merged}
    if minified:
        config = minify(config, current_globals().context)
    config = config if raw else redact(config)
    out.write(out.to_json(config) if output == "json" else out.to_yaml(config))


@app.command("current-context")
@config_flags
def current_context() -> None:
    """Display the current context."""
    name = _merged().get("current-context")
    if not name:
        fail("current-context is not set")
    print(name)


@app.command("get-contexts")
@config_flags
def get_contexts(names: Annotated[list[str] | None, typer.Argument(
        help="Contexts to show (default: all).", show_default=False)] = None,
        output: Annotated[str, typer.Option("--output", "-o", metavar="FORMAT",
                                            help="name: names only.")] = "",
        ) -> None:
    """Describe one or many contexts (with their tenant)."""
    merged = _merged()
    contexts = merged["contexts"]
    missing = [n for n in names or [] if n not in {c["name"] for c in contexts}]
    if missing:
        fail(f"context {missing[0]} not found")
    chosen = [c for c in contexts if not names or c["name"] in names]
    if output == "name":
        out.write("".join(c["name"] + "\n" for c in chosen))
        return
    rows = [["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE", "TENANT"]]
    for c in chosen:
        body = c.get("context") or {}
        rows.append(["*" if c["name"] == merged.get("current-context") else "", c["name"],
                     *(str(body.get(k) or "") for k in ("cluster", "user", "namespace",
                                                         "tenant"))])
    out.write("".join(line + "\n" for line in out.pad_cells(rows)))


def complete_contexts(incomplete: str) -> list[str]:
    """Shell completion of context names (from the merged kubeconfig)."""
    try:
        contexts = merge_kubeconfigs(_paths())["contexts"]
    except ConfigError:
        return []
    return [c["name"] for c in contexts if str(c["name"]).startswith(incomplete)]


ContextName = Annotated[str, typer.Argument(help="The context.", show_default=False,
                                            autocompletion=complete_contexts)]


@app.command("use-context")
@config_flags
def use_context(name: ContextName) -> None:
    """Set the current-context in a kubeconfig file."""
    if name not in {c["name"] for c in _merged()["contexts"]}:
        fail(f'no context exists with the name: "{name}"')
    path = default_file(_paths())
    data = _read(path)
    data["current-context"] = name
    write_kubeconfig(path, data)
    print(f'Switched to context "{name}".')


def _context_entry(data: Doc, name: str) -> tuple[Doc, bool]:
    """The context entry `name` in a file's data (added when missing) and if it was new."""
    contexts = data.setdefault("contexts", []) or []
    data["contexts"] = contexts
    for entry in contexts:
        if isinstance(entry, dict) and entry.get("name") == name:
            entry["context"] = entry.get("context") or {}
            return entry, False
    entry = {"name": name, "context": {}}
    contexts.append(entry)
    return entry, True


SetValue = Annotated[str | None, typer.Option(show_default=False, metavar="NAME")]


@app.command("set-context")
@config_flags
def set_context(name: ContextName = "",
        current: Annotated[bool, typer.Option(
            "--current", help="Modify the current context.")] = False,
        cluster: SetValue = None, user: SetValue = None, namespace: SetValue = None,
        tenant: SetValue = None) -> None:
    """Set a context entry in kubeconfig: --cluster, --user, --namespace, --tenant."""
    if current == bool(name):
        fail("you must specify either a context name or --current", "See 'arkctl config "
             "set-context -h' for help and examples.")
    if current:
        name = _merged().get("current-context") or ""
        if not name:
            fail("no current context is set")
    paths = _paths()
    path = holder("contexts", name, paths) or default_file(paths)
    data = _read(path)
    entry, created = _context_entry(data, name)
    for key, value in (("cluster", cluster), ("user", user), ("namespace", namespace),
                       ("tenant", tenant)):
        if value is not None:
            entry["context"][key] = value
    write_kubeconfig(path, data)
    print(f'Context "{name}" {"created" if created else "modified"}.')


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
