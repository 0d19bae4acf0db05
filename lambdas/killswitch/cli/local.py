"""`killswitch local`: a moto server on 127.0.0.1 with the ledger table created as the stack creates it, so every
other command can be tried without an AWS account. Prints the environment to export in another shell.

State lives in the server's memory and is gone when it stops. `--fleet` adds a few tagged EC2 instances per agent
(one critical, one exempt) so that `kill`, `approve` and `restore` have something to act on.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import typer

from killswitch import tags as T
from killswitch.cli.ops import CliError, ConfigOpt, cli_config, run
from killswitch.config import KillSwitchConfig, resolve_config_path
from killswitch.settings import ENV_EVENTS_TOPIC, ENV_TABLE
from killswitch.testing import sim

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass
class LocalBackend:
    """A running moto server and what was created in it."""

    server: Any
    endpoint: str
    region: str
    table: str
    events_topic_arn: str
    config_path: Path
    fleet: dict[str, list[str]] = field(default_factory=dict)  # agent → instance ids

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            ENV_TABLE: self.table,
            ENV_EVENTS_TOPIC: self.events_topic_arn,
            "KILLSWITCH_CONFIG": str(self.config_path),
        }

    def stop(self) -> None:
        """Forget every resource (moto keeps its state per process, not per server) and stop the server."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10)
        self.server.stop()


def start_local(
    config: KillSwitchConfig, config_path: Path, *, port: int, table: str | None = None, fleet: bool = False
) -> LocalBackend:
    from moto.server import ThreadedMotoServer

    if port:
        # moto's server binds in a thread and never signals a failed bind (start() would wait forever): probe first,
        # so a port in use is an OSError here.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", port))

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request drowns the env
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    region = config.deploy_region
    session = boto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    cache: dict[tuple[str, str], Any] = {}

    def clients(service: str, client_region: str) -> Any:
        key = (service, client_region)
        if key not in cache:
            cache[key] = session.client(service, region_name=client_region, endpoint_url=endpoint)
        return cache[key]

    table = table or f"{config.prefix}-ledger"  # the stack's name (infra/constructs/ledger.py)
    sim.create_ledger_table(clients("dynamodb", region), table)
    topic = clients("sns", region).create_topic(Name=f"{config.prefix}-events")["TopicArn"]
    backend = LocalBackend(server, endpoint, region, table, topic, config_path.resolve())
    if fleet:
        backend.fleet = build_local_fleet(clients, config)
    return backend


def build_local_fleet(clients: Any, config: KillSwitchConfig) -> dict[str, list[str]]:
    """Two plain instances per agent in the first region; the first agent also gets a critical and an exempt one."""
    region = config.regions[0]
    out: dict[str, list[str]] = {}
    for n, agent in enumerate(config.agent_names()):
        ids = [sim.run_instance(clients, region, sim.agent_tags(agent, Name=f"{agent}-{i}")) for i in (1, 2)]
        if n == 0:
            ids.append(sim.run_instance(clients, region, sim.agent_tags(agent, **{T.CRITICALITY: "critical"})))
            ids.append(sim.run_instance(clients, region, sim.agent_tags(agent, **{T.EXEMPT: "true"})))
        out[agent] = ids
    return out


def local(
    port: int = typer.Option(5000, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    table: str | None = typer.Option(None, "--table", help="Ledger table name (default: <prefix>-ledger)."),
    fleet: bool = typer.Option(False, "--fleet", help="Also launch a few tagged EC2 instances per agent."),
    config: Path | None = ConfigOpt,
) -> None:
    """Start a moto server on 127.0.0.1 with the ledger table, print the environment to export, wait for Ctrl-C."""

    def body() -> int:
        path = resolve_config_path(config)
        cfg = cli_config(path)
        try:
            backend = start_local(cfg, path, port=port, table=table, fleet=fleet)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
        typer.echo(f"# moto server on {backend.endpoint} (state in memory; Ctrl-C stops it). In another shell:")
        for name, value in backend.environment().items():
            typer.echo(f"export {name}={value}")
        typer.echo("unset AWS_PROFILE AWS_SESSION_TOKEN")
        typer.echo(f"# ledger table {backend.table}: pk (S) hash key, sk (S) range key, TTL on expires_at")
        for agent, ids in backend.fleet.items():
            typer.echo(f"# {agent}: {', '.join(ids)} in {cfg.regions[0]}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopped")
        finally:
            backend.stop()
        return 0

    run(body)


def register(app: typer.Typer) -> None:
    app.command("local")(local)
