"""`arkctl api-resources` (from the server's discovery) and `arkctl version`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from arktos import __version__
from arktos.cli.arkctl import output as out
from arktos.cli.arkctl.options import with_globals
from arktos.cli.arkctl.session import Session, run

Doc = dict[str, Any]


async def group_versions(session: Session) -> list[str]:
    """`v1` and each group's preferred version, as discovery lists them."""
    found = ["v1"]
    groups = await session.api.request("GET", "/apis")
    for group in groups.get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        if preferred:
            found.append(str(preferred))
    return found


def resource_rows(group_version: str, doc: Doc, namespaced: bool | None) -> list[list[str]]:
    """api-resources rows of one group version (no subresources)."""
    rows = []
    for res in doc.get("resources") or []:
        if "/" in res.get("name", "") or (namespaced is not None
                                          and bool(res.get("namespaced")) != namespaced):
            continue
        rows.append([res["name"], ",".join(res.get("shortNames") or []), group_version,
                     str(bool(res.get("namespaced"))).lower(),
                     str(bool(res.get("tenanted", res.get("namespaced")))).lower(),
                     res.get("kind", "")])
    return rows


async def _api_resources(session: Session, namespaced: bool | None, output: str) -> None:
    rows: list[list[str]] = []
    for gv in await group_versions(session):
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        rows += resource_rows(gv, await session.api.request("GET", path), namespaced)
    rows.sort(key=lambda r: (r[2].partition("/")[0] if "/" in r[2] else "", r[0]))
    if output == "name":
        out.write("".join(r[0] + ("" if "/" not in r[2] else "." + r[2].split("/")[0]) + "\n"
                          for r in rows))
        return
    header = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "TENANTED", "KIND"]
    out.write("".join(line + "\n" for line in out.pad_cells([header, *rows])))


async def _version(session: Session | None) -> None:
    print(f"Client Version: v{__version__} (arkctl)")
    if session is not None:
        info = await session.api.request("GET", "/version")
        print(f"Server Version: {info.get('gitVersion', '')}")


def register(app: typer.Typer) -> None:
    """Add `api-resources` and `version` to the app."""
    @app.command("api-resources")
    @with_globals()
    def api_resources(namespaced: Annotated[str, typer.Option(
            "--namespaced", metavar="BOOL",
            help="true: namespaced resources only; false: the others.")] = "",
            output: Annotated[str, typer.Option(
                "--output", "-o", metavar="FORMAT", help="name: names only.")] = "") -> None:
        """Print the resources the server serves (with Arktos' TENANTED column)."""
        choice = None if not namespaced else namespaced.lower() == "true"
        run(lambda s: _api_resources(s, choice, output))

    @app.command()
    @with_globals()
    def version(client: Annotated[bool, typer.Option(
            "--client", help="Only the client version.")] = False) -> None:
        """Print the client and server versions."""
        if client:
            print(f"Client Version: v{__version__} (arkctl)")
            return
        run(_version)
