"""`arktos`: run the cluster (`up`) or one component (`apiserver`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from arktos import certs
from arktos.apiserver.authn import (
    Authenticator,
    Authenticators,
    ClientCertificates,
    ServiceAccountTokens,
    TokenFile,
)
from arktos.apiserver.flowcontrol import FairShare
from arktos.apiserver.guard import Guard, server_tls
from arktos.apiserver.server import APIServer
from arktos.cli.certs import certs_app
from arktos.cli.kubeconfig import write_kubeconfig
from arktos.cli.supervisor import supervise
from arktos.client.config import ClientConfig, ConfigError, load_config
from arktos.client.rest import ApiClient
from arktos.controllers.catalog import CONTROLLERS
from arktos.controllers.manager import ControllerManager, Factory
from arktos.controllers.settings import Settings
from arktos.scheduler.scheduler import Scheduler, SchedulerSettings
from arktos.scheduler.scores import parse_weights
from arktos.storage.url import open_storage

app = typer.Typer(help="Arktos: a multi-tenant cluster manager for containers and VMs.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)
app.add_typer(certs_app, name="certs")
TENANT_SHARE = FairShare(inflight=8, qps=300.0, burst=600, queue=64, max_wait=1.0)
"""What one tenant (other than `system`) may use at once: requests in flight and per second;
up to 64 more wait (at most a second) for their turn."""
USER_SHARE = TENANT_SHARE
TENANT_SEATS = 48
"""Requests of all tenants but `system` in flight together, handed out round-robin."""

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
Kubeconfig = Annotated[Path, typer.Option("--kubeconfig", help="How to reach the API server.")]
TokenAuthFile = Annotated[Path | None, typer.Option(
    "--token-auth-file", help='CSV of static tokens: token,user,uid,"group1,group2",,tenant')]


@dataclass(frozen=True)
class ServerOptions:
    data_dir: Path
    host: str
    port: int
    storage: str
    bookmark_interval: float
    max_inflight: tuple[int, int]
    token_auth_file: Path | None = None
    agent: bool = False
    """With `up`: also run the node agent for this machine."""

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"


def _authenticators(pki: certs.Pki, token_file: Path | None) -> Authenticators:
    """Client certificates, the static token file (if any), service-account tokens."""
    chain: list[Authenticator] = [ClientCertificates()]
    if token_file is not None:
        chain.append(TokenFile.load(token_file))
    chain.append(ServiceAccountTokens(private_key=pki.sa_key.read_bytes(),
                                      public_key=pki.sa_pub.read_bytes()))
    return Authenticators(chain)


def _cancel_on_signals() -> None:
    """SIGINT/SIGTERM cancel the running main task (a clean stop)."""
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)


async def _serve(opts: ServerOptions, *, up: bool) -> None:
    """The API server; with `up`, also every other component as a supervised child."""
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1" if opts.host in ("0.0.0.0", "") else opts.host
    pki = certs.ensure_pki(opts.data_dir, hosts=("localhost", "127.0.0.1", host))
    store = await open_storage(opts.storage_url)
    server = APIServer(store, host=opts.host, port=opts.port,
                       bookmark_interval=opts.bookmark_interval, max_inflight=opts.max_inflight,
                       tls=server_tls(pki.serving_cert, pki.serving_key, pki.ca_cert),
                       guard=Guard(_authenticators(pki, opts.token_auth_file)),
                       fair_shares=(TENANT_SHARE, USER_SHARE), tenant_seats=TENANT_SEATS)
    kubeconfig = opts.data_dir / "admin.kubeconfig"
    url = f"https://{host}:{opts.port}"

    ready = asyncio.Event()

    def started() -> None:
        ready.set()
        write_kubeconfig(kubeconfig, certs.admin_kubeconfig(pki, url))
        if up:
            console.print(f"[green]arktos is up[/green] on {url} "
                          f"(storage: {opts.storage_url})\n"
                          f"kubeconfig: {kubeconfig.resolve()}\n"
                          f"try: kubectl --kubeconfig {kubeconfig} get namespaces\n"
                          "stop with Ctrl-C")

    _cancel_on_signals()
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.run(started))
            await ready.wait()
            if up:
                tg.create_task(supervise("controller-manager", [
                    "controller-manager", "--kubeconfig", str(kubeconfig)]))
                tg.create_task(supervise("scheduler", [
                    "scheduler", "--kubeconfig", str(kubeconfig)]))
                if opts.agent:
                    tg.create_task(supervise("agent", _agent_args(pki, opts.data_dir, url)))
    except asyncio.CancelledError:
        pass
    finally:
        await store.close()


def _agent_args(pki: certs.Pki, data_dir: Path, url: str) -> list[str]:
    """`arktos agent` for this machine: its own node identity (`system:node:<host>`), a
    serving certificate for its logs server, state under DATA_DIR/agent."""
    import socket

    from arktos.agent.host import host_address

    name = socket.gethostname().lower()
    cert_pem, key_pem = certs.issue_node_client_cert(pki, name)
    node_kubeconfig = data_dir / "node.kubeconfig"
    certs.write_kubeconfig_for(pki, server=url, user=certs.NODE_USER_PREFIX + name,
                               tenant=certs.NODE_TENANT, cert_pem=cert_pem, key_pem=key_pem,
                               out=node_kubeconfig)
    cert, key = certs.issue_node_serving_cert(pki, name, [host_address()])
    return ["agent", "--kubeconfig", str(node_kubeconfig), "--node-name", name,
            "--root-dir", str(data_dir / "agent"), "--images-dir", str(data_dir / "images"),
            "--port", "0", "--tls-cert-file", str(cert), "--tls-private-key-file", str(key),
            "--client-ca-file", str(pki.ca_cert)]


def _logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _run(opts: ServerOptions, *, up: bool) -> None:
    _logging()
    try:
        asyncio.run(_serve(opts, up=up))
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def up(data_dir: DataDir = Path(".arktos"), port: Port = 6443, host: Host = "127.0.0.1",
       storage: StorageUrl = "", bookmark_interval: Bookmarks = 10.0,
       max_requests_inflight: ReadInflight = 400,
       max_mutating_requests_inflight: WriteInflight = 200,
       token_auth_file: TokenAuthFile = None,
       agent: Annotated[bool, typer.Option(
           help="Run the node agent for this machine (Podman containers, QEMU VMs).")] = True
       ) -> None:
    """Run the whole cluster on this machine in the foreground (Ctrl-C stops it)."""
    _run(ServerOptions(data_dir, host, port, storage, bookmark_interval,
                       (max_requests_inflight, max_mutating_requests_inflight),
                       token_auth_file, agent), up=True)


@app.command()
def apiserver(data_dir: DataDir = Path(".arktos"), port: Port = 6443,
              host: Host = "127.0.0.1", storage: StorageUrl = "",
              bookmark_interval: Bookmarks = 10.0, max_requests_inflight: ReadInflight = 400,
              max_mutating_requests_inflight: WriteInflight = 200,
              token_auth_file: TokenAuthFile = None) -> None:
    """Run the API server alone."""
    _run(ServerOptions(data_dir, host, port, storage, bookmark_interval,
                       (max_requests_inflight, max_mutating_requests_inflight),
                       token_auth_file), up=False)


@app.command("controller-manager")
def controller_manager(
        kubeconfig: Kubeconfig,
        controllers: Annotated[str, typer.Option(
            help="Comma-separated controllers to run, or * for all.")] = "*",
        leader_elect: Annotated[bool, typer.Option(
            help="Run only while holding the controller-manager lease.")] = True,
        node_monitor_grace_period: Annotated[float, typer.Option(
            help="Seconds without a node heartbeat before the node is NotReady.")] = 40.0,
        pod_eviction_timeout: Annotated[float, typer.Option(
            help="Seconds a node is unreachable before its pods are deleted.")] = 300.0,
        leader_elect_lease_duration: Annotated[float, typer.Option(
            help="Seconds a leader's lease lasts without renewal.")] = 15.0,
        leader_elect_renew_deadline: Annotated[float, typer.Option(
            help="Seconds a leader keeps trying to renew before it steps down.")] = 10.0,
        leader_elect_retry_period: Annotated[float, typer.Option(
            help="Seconds between attempts to acquire or renew the lease.")] = 2.0,
        kube_api_qps: Annotated[float, typer.Option(
            help="Requests per second to the API server (shared by the controllers).")] = 300.0,
        kube_api_burst: Annotated[int, typer.Option(
            help="Requests allowed in a burst above the QPS.")] = 600) -> None:
    """Run the controllers (tenant, namespace, garbage collector, workloads, nodes, ...)."""
    _logging()
    factories = _pick_controllers(controllers)
    try:
        config = load_config(kubeconfig).with_overrides(qps=kube_api_qps, burst=kube_api_burst)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    settings = Settings(leader_elect=leader_elect,
                        node_monitor_grace_period=node_monitor_grace_period,
                        pod_eviction_timeout=pod_eviction_timeout,
                        lease_duration=leader_elect_lease_duration,
                        renew_deadline=leader_elect_renew_deadline,
                        retry_period=leader_elect_retry_period)
    asyncio.run(_run_component(config, lambda api: ControllerManager(
        api, factories, settings=settings).run()))


@app.command()
def scheduler(
        kubeconfig: Kubeconfig,
        leader_elect: Annotated[bool, typer.Option(
            help="Schedule only while holding the scheduler lease.")] = True,
        metrics_port: Annotated[int, typer.Option(
            help="Port of /metrics and /healthz (0: any free port, -1: none).")] = 10259,
        metrics_host: Annotated[str, typer.Option(help="Address of /metrics.")] = "127.0.0.1",
        percentage_of_nodes_to_score: Annotated[int, typer.Option(
            help="Share of feasible nodes to score (0: adaptive, as kube-scheduler).")] = 0,
        score_weights: Annotated[str, typer.Option(
            help="Score weights over the defaults, e.g. least_allocated=2,selector_spread=0 "
                 "(least_allocated, balanced_allocation, node_affinity, taint_toleration, "
                 "selector_spread, inter_pod_affinity).")] = "",
        leader_elect_lease_duration: Annotated[float, typer.Option(
            help="Seconds a leader's lease lasts without renewal.")] = 15.0,
        leader_elect_renew_deadline: Annotated[float, typer.Option(
            help="Seconds a leader keeps trying to renew before it steps down.")] = 10.0,
        leader_elect_retry_period: Annotated[float, typer.Option(
            help="Seconds between attempts to acquire or renew the lease.")] = 2.0,
        kube_api_qps: Annotated[float, typer.Option(
            help="Requests per second to the API server (bindings, status).")] = 2000.0,
        kube_api_burst: Annotated[int, typer.Option(
            help="Requests allowed in a burst above the QPS.")] = 4000) -> None:
    """Run the scheduler: places container and VM pods of every tenant on nodes."""
    _logging()
    if not 0 <= percentage_of_nodes_to_score <= 100:
        console.print("[red]error:[/red] --percentage-of-nodes-to-score must be 0-100")
        raise typer.Exit(2)
    try:
        weights = parse_weights(score_weights)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --score-weights: {exc}")
        raise typer.Exit(2) from None
    try:
        config = load_config(kubeconfig).with_overrides(qps=kube_api_qps, burst=kube_api_burst)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    settings = SchedulerSettings(leader_elect=leader_elect, metrics_port=metrics_port,
                                 metrics_host=metrics_host,
                                 percentage_of_nodes_to_score=percentage_of_nodes_to_score,
                                 weights=weights, lease_duration=leader_elect_lease_duration,
                                 renew_deadline=leader_elect_renew_deadline,
                                 retry_period=leader_elect_retry_period)
    asyncio.run(_run_component(config, lambda api: Scheduler(api, settings).run()))


@app.command()
def agent(
        kubeconfig: Kubeconfig,
        hollow: Annotated[bool, typer.Option(
            help="Run simulated (hollow) nodes: no processes, for scale tests.")] = False,
        count: Annotated[int, typer.Option(help="Hollow nodes to run.")] = 1,
        name_prefix: Annotated[str, typer.Option(
            help="Hollow node names are PREFIX0, PREFIX1, ...")] = "hollow-node-",
        start_latency: Annotated[float, typer.Option(
            help="Seconds a hollow pod takes to start.")] = 0.0,
        node_name: Annotated[str, typer.Option(
            help="This node's name (default: the hostname).")] = "",
        root_dir: Annotated[Path, typer.Option(
            help="Where the agent keeps its pods' state.")] = Path(".arktos/agent"),
        images_dir: Annotated[Path, typer.Option(
            help="Where VM images are (tinyvm is built there).")] = Path(".arktos/images"),
        address: Annotated[str, typer.Option(
            help="The node's InternalIP (default: the host's main address).")] = "",
        port: Annotated[int, typer.Option(
            help="Port of the agent server (logs); 0: any free one.")] = 10250,
        tls_cert_file: Annotated[Path | None, typer.Option(
            help="The agent server's certificate.")] = None,
        tls_private_key_file: Annotated[Path | None, typer.Option(
            help="The agent server's key.")] = None,
        client_ca_file: Annotated[Path | None, typer.Option(
            help="CA of the clients (the API server) allowed to connect.")] = None,
        vms: Annotated[bool, typer.Option(help="Run the QEMU VM runtime.")] = True,
        lease_duration: Annotated[int, typer.Option(
            help="Seconds a node Lease lasts without renewal.")] = 40,
        lease_renew_interval: Annotated[float, typer.Option(
            help="Seconds between node Lease renewals.")] = 10.0,
        node_status_update_frequency: Annotated[float, typer.Option(
            help="Seconds between Node status updates when nothing changed.")] = 60.0,
        kube_api_qps: Annotated[float, typer.Option(
            help="Requests per second to the API server (all nodes together).")] = 1000.0,
        kube_api_burst: Annotated[int, typer.Option(
            help="Requests allowed in a burst above the QPS.")] = 2000) -> None:
    """Run the node agent: this machine as a node (Podman containers, QEMU VMs), or with
    --hollow, COUNT simulated nodes in one process (they use the kubeconfig given, normally
    the admin's: one process serves many nodes, so it cannot be one node)."""
    import socket

    from arktos.agent.settings import AgentSettings

    _logging()
    if count < 1:
        console.print("[red]error:[/red] --count must be at least 1")
        raise typer.Exit(2)
    tls_files = (tls_cert_file, tls_private_key_file, client_ca_file)
    if any(tls_files) and not all(tls_files):
        console.print("[red]error:[/red] give all of --tls-cert-file, --tls-private-key-file "
                      "and --client-ca-file, or none (then logs are not served)")
        raise typer.Exit(2)
    try:
        config = load_config(kubeconfig).with_overrides(qps=kube_api_qps, burst=kube_api_burst)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    settings = AgentSettings(lease_duration=lease_duration,
                             lease_renew_interval=lease_renew_interval,
                             node_status_update_frequency=node_status_update_frequency)
    if hollow:
        _run_hollow(config, settings, count, name_prefix, start_latency)
        return
    from arktos.agent.local import LocalOptions, run_local
    opts = LocalOptions(node_name or socket.gethostname().lower(), root_dir.resolve(),
                        images_dir.resolve(), address, port,
                        tuple(tls_files) if all(tls_files) else None,  # type: ignore[arg-type]
                        vms)
    asyncio.run(_run_component(config, lambda api: run_local(api, opts, settings)))


def _run_hollow(config: ClientConfig, settings: object, count: int, prefix: str,
                start_latency: float) -> None:
    from arktos.agent.agent import Agent, hollow_nodes
    from arktos.agent.hollow import HollowRuntime
    from arktos.agent.settings import AgentSettings

    assert isinstance(settings, AgentSettings)
    nodes = hollow_nodes(count, prefix, HollowRuntime(start_latency))
    asyncio.run(_run_component(config, lambda api: Agent(api, nodes, settings).run()))


def _pick_controllers(spec: str) -> list[Factory]:
    """The controllers named by `--controllers` (`*`: all); exit 2 naming unknown ones."""
    names = list(CONTROLLERS) if spec == "*" else spec.split(",")
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        console.print(f"[red]error:[/red] unknown controllers {', '.join(unknown)}; known: "
                      f"{', '.join(CONTROLLERS)}")
        raise typer.Exit(2)
    return [CONTROLLERS[n] for n in names]


async def _run_component(config: ClientConfig, body: Callable[[ApiClient], Awaitable[None]]) -> None:
    """Run a client component until SIGINT/SIGTERM."""
    _cancel_on_signals()
    try:
        async with ApiClient(config) as api:
            await body(api)
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    app()
