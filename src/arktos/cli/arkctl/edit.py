"""`arkctl edit`: the object in $KUBE_EDITOR / $EDITOR (default vi), then an update."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from arktos.cli.arkctl import output as out
from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.options import with_globals
from arktos.cli.arkctl.resolve import complete_types, object_ref, parse_targets
from arktos.cli.arkctl.session import Session, run
from arktos.client.rest import ApiError

Obj = dict[str, Any]
_HEADER = """\
# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
"""


def editor_command() -> list[str]:
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def _serialize(obj: Obj, fmt: str) -> str:
    return out.to_json(obj) if fmt == "json" else out.to_yaml(obj)


def _parse(text: str) -> Obj | None:
    """The edited object; None when the file was emptied (comments do not count)."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not kept.strip():
        return None
    try:
        doc = yaml.safe_load(kept)
    except yaml.YAMLError as exc:
        raise CliError(f"the edited file is not valid YAML or JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CliError("the edited file must hold one object")
    return doc


def edit_text(text: str, suffix: str) -> tuple[str, Path]:
    """Run the editor on `text` in a temporary file; returns the result and the file."""
    fd, name = tempfile.mkstemp(prefix="arkctl-edit-", suffix=suffix)
    path = Path(name)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        done = subprocess.run([*editor_command(), str(path)], check=False)
    except OSError as exc:
        raise CliError(f"cannot run the editor: {exc}") from None
    if done.returncode != 0:
        raise CliError(f"there was a problem with the editor {editor_command()[0]!r}")
    return path.read_text(), path


async def _edit(session: Session, args: list[str], fmt: str) -> None:
    targets = parse_targets(args, "edit")
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("edit takes exactly one object: TYPE NAME or TYPE/NAME")
    rtype, name = targets[0].rtype, targets[0].names[0]
    client = session.resource(rtype)
    live = await client.get(name, namespace=session.object_namespace(rtype))
    text, path = edit_text(_HEADER + _serialize(live, fmt), f".{fmt}")
    edited = _parse(text)
    if edited is None or json.dumps(edited, sort_keys=True) == json.dumps(live, sort_keys=True):
        path.unlink(missing_ok=True)
        print("Edit cancelled, no changes made.", file=sys.stderr)
        return
    try:
        await client.update(edited)
    except ApiError:
        print(f'error: {object_ref(rtype, name)} could not be saved; a copy of your changes '
              f'has been stored to "{path}"', file=sys.stderr)
        raise
    path.unlink(missing_ok=True)
    print(f"{object_ref(rtype, name)} edited")


def register(app: typer.Typer) -> None:
    """Add `edit` to the app."""
    @app.command()
    @with_globals()
    def edit(args: Annotated[list[str], typer.Argument(
            help="TYPE NAME or TYPE/NAME", autocompletion=complete_types,
            metavar="TYPE NAME")],
            output: Annotated[str, typer.Option(
                "--output", "-o", metavar="FORMAT",
                help="Edit as yaml (default) or json.")] = "yaml") -> None:
        """Edit a resource in your editor ($KUBE_EDITOR, $EDITOR, else vi) and save it."""
        if output not in ("yaml", "json"):
            raise typer.BadParameter("must be yaml or json", param_hint="--output")
        run(lambda s: _edit(s, args, output))
