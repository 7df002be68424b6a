"""`arktos`: run the cluster (`up`) or one component (`apiserver`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from arktos.apiserver.server import APIServer
from arktos.cli.kubeconfig import admin_kubeconfig, write_kubeconfig
from arktos.storage.url import open_storage

app = typer.Typer(help="Arktos: a multi-tenant cluster manager for containers and VMs.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where state, kubeconfig and "
                                       "certificates live.")]
Port = Annotated[int, typer.Option("--port", help="API server port.")]
Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
StorageUrl = Annotated[str, typer.Option(
    "--storage", help="sqlite:///path/to/db (default DATA_DIR/state.db) or "
    "etcd://host:port[,host:port...]")]
Bookmarks = Annotated[float, typer.Option(
    "--bookmark-interval", help="Seconds between BOOKMARK events on idle watches that ask "
    "for them.")]
ReadInflight = Annotated[int, typer.Option(
    "--max-requests-inflight", help="Read-only requests served at once (0: no limit); "
    "more get 429.")]
WriteInflight = Annotated[int, typer.Option(
    "--max-mutating-requests-inflight", help="Mutating requests served at once (0: no "
    "limit); more get 429.")]


@dataclass(frozen=True)
class ServerOptions:
    data_dir: Path
    host: str
    port: int
    storage: str
    bookmark_interval: float
    max_inflight: tuple[int, int]

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"


async def _serve(opts: ServerOptions, banner: bool) -> None:
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_storage(opts.storage_url)
    server = APIServer(store, host=opts.host, port=opts.port,
                       bookmark_interval=opts.bookmark_interval, max_inflight=opts.max_inflight)
    kubeconfig = opts.data_dir / "admin.kubeconfig"
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "") else opts.host

    def started() -> None:
        write_kubeconfig(kubeconfig, admin_kubeconfig(f"http://{host}:{opts.port}"))
        if banner:
            console.print(f"[green]arktos is up[/green] on http://{host}:{opts.port} "
                          f"(storage: {opts.storage_url})\n"
                          f"kubeconfig: {kubeconfig.resolve()}\n"
                          f"try: kubectl --kubeconfig {kubeconfig} get namespaces\n"
                          "stop with Ctrl-C")

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await server.run(started)
    except asyncio.CancelledError:
        pass
    finally:
        await store.close()


def _run(opts: ServerOptions, *, banner: bool) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(opts, banner))
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def up(data_dir: DataDir = Path(".arktos"), port: Port = 6443, host: Host = "127.0.0.1",
       storage: StorageUrl = "", bookmark_interval: Bookmarks = 10.0,
       max_requests_inflight: ReadInflight = 400,
       max_mutating_requests_inflight: WriteInflight = 200) -> None:
    """Run the whole cluster on this machine in the foreground (Ctrl-C stops it)."""
    _run(ServerOptions(data_dir, host, port, storage, bookmark_interval,
                       (max_requests_inflight, max_mutating_requests_inflight)), banner=True)


@app.command()
def apiserver(data_dir: DataDir = Path(".arktos"), port: Port = 6443,
              host: Host = "127.0.0.1", storage: StorageUrl = "",
              bookmark_interval: Bookmarks = 10.0, max_requests_inflight: ReadInflight = 400,
              max_mutating_requests_inflight: WriteInflight = 200) -> None:
    """Run the API server alone."""
    _run(ServerOptions(data_dir, host, port, storage, bookmark_interval,
                       (max_requests_inflight, max_mutating_requests_inflight)), banner=False)


if __name__ == "__main__":
    app()
