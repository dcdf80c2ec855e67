"""`edge-agent run` and `edge-agent demo`: the agent itself, with its local page."""

from __future__ import annotations

__all__ = ["add_commands", "run_agent"]

import argparse
import asyncio
import functools
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.access import AccessError, AccessStore
from edge_agent.cli.simulate import start_opcua_press, start_simulator
from edge_agent.errors import EdgeAgentError
from edge_agent.stopping import StopRequest, run_until_stopped, stop_within
from edge_agent.web.view_model import page_state

if TYPE_CHECKING:
    from edge_agent.config_models import AgentFile

_log = logging.getLogger("edge_agent")
_GIL_TURN_S = 0.001  # see run_agent


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    run = sub.add_parser("run", help="run the agent on a configuration file")
    run.add_argument("config", type=Path)
    run.set_defaults(command=_cmd_run)

    demo = sub.add_parser("demo", help="simulated presses plus the agent on configs/demo.yaml")
    demo.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    demo.set_defaults(command=_cmd_demo)


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)
    if args.log_level is None:
        logging.getLogger().setLevel(config.agent.log_level)
    return run_until_stopped(lambda stop: run_agent(config, stop, banner=False))


def _cmd_demo(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)

    async def demo(stop: asyncio.Event) -> None:
        from edge_agent.demo_history import fill_history

        if isinstance(stop, StopRequest):
            stop.step = "simulating the demo's history"
        # Three simulated days first, so that trends, stops and shift reports show at once.
        await fill_history(config)
        if stop.is_set():
            return
        if isinstance(stop, StopRequest):
            stop.step = "starting up"
        # The first press wears its bearing fast enough to show a rising vibration within minutes.
        fleet = await start_simulator(2, "127.0.0.1", 5020, 1, (6.0, 0.0))
        opcua = await start_opcua_press()
        try:
            await run_agent(config, stop, banner=True, config_path=args.config)
        finally:
            if isinstance(stop, StopRequest):
                stop.step = "stopping the simulated presses"
            # asyncua's server takes up to 1 s to stop (its clock task sleeps a second at a time).
            await stop_within({"the OPC UA press": opcua.stop(), "the presses": fleet.stop()}, 1.5)

    return run_until_stopped(demo)


async def run_agent(
    config: AgentFile, stop: asyncio.Event, *, banner: bool, config_path: Path | None = None
) -> None:
    from edge_agent.agent import Agent
    from edge_agent.http import LocalServer
    from edge_agent.web.history_api import HistoryApi
    from edge_agent.web.meta import read_meta
    from edge_agent.web.operator_api import OperatorApi
    from edge_agent.web.reports import ReportApi

    # The event loop thread times the polls; the buffer's, the InfluxDB writer's and paho's
    # threads run Python too. With the default 5 ms turns a reply waits up to that long for the
    # loop to get the GIL, and at 20 ms polls a few such waits in a row make a poll overrun
    # (measured at 100k values/s: 2.3 % of polls overran with 5 ms turns, 1.0 % with 1 ms, for
    # the same CPU).
    sys.setswitchinterval(_GIL_TURN_S)
    agent = Agent(config)
    server: LocalServer | None = None
    if isinstance(stop, StopRequest):
        stop.agent = agent  # the watchdog names the agent's stop step

    async def ready() -> None:
        nonlocal server
        http = config.agent.http
        if http.enabled:
            access = AccessStore(config.agent.access_path)
            try:
                access.reload()
            except AccessError as exc:
                _log.error("%s; nobody can log in or command until it is fixed", exc)
            if access.empty:
                _log.info(
                    "no users or tokens yet (%s): commands are refused; add someone with "
                    "'edge-agent user add NAME --role operator --config FILE'",
                    config.agent.access_path,
                )
            server = LocalServer(
                http.host,
                http.port,
                functools.partial(page_state, agent),
                agent.metrics.registry,
                agent.ingest.command,
                access=access,
                hostnames=tuple(http.hostnames),
                open_read=http.open_read,
                reads={
                    **HistoryApi(
                        config,
                        agent.history,
                        lambda: agent.ingest.latest_oee,
                        current=agent.ingest.current_state,
                    ).routes(),
                    **ReportApi(config, agent.history, lambda: agent.ingest.latest_oee).routes(),
                    "/api/meta": read_meta(config),
                },
                actions=OperatorApi(
                    config, agent.history, lambda: agent.engine, agent.ingest.publish
                ).actions(),
            )
            try:
                server.start()
            except OSError as exc:
                raise EdgeAgentError(
                    f"cannot open the local page on {http.host}:{http.port}: {exc.strerror} "
                    "(set agent.http.port to a free port, or agent.http.enabled: false)"
                ) from None
            _log.info("local page on %s (metrics on %smetrics)", server.url, server.url)
        if banner:
            _print_banner(config, server.url if server else None, config_path)

    try:
        await agent.run(stop, on_ready=ready)
    finally:
        if isinstance(stop, StopRequest):
            stop.agent, stop.step = None, "stopping the local page"
        if server is not None:
            server.stop()  # within 1 s; requests in progress are not waited for


def _print_banner(config: AgentFile, url: str | None, config_path: Path | None) -> None:
    from edge_agent.sinks.influxdb.config import InfluxSinkConfig
    from edge_agent.sinks.mqtt.config import MqttSinkConfig

    # The demo's sinks (configs/demo.yaml): the first enabled instance of each type.
    enabled = [s for s in config.sinks.values() if s.enabled]
    mqtt = next((s for s in enabled if isinstance(s, MqttSinkConfig)), None)
    influx = next((s for s in enabled if isinstance(s, InfluxSinkConfig)), None)
    lines = [
        "",
        "edge-agent demo is running: simulated presses on Modbus TCP 127.0.0.1:5020 and :5021, and on",
        "OPC UA opc.tcp://127.0.0.1:4840/edge-agent/sim;",
        "press1's main bearing wears: watch its alarms (trend within about 10 min) on the page.",
        "The last 3 days of history are simulated (labelled so on the page) so trends show at once.",
        f"  Live values and machine states:  {url or '(local page disabled)'}",
        f"  Prometheus metrics:              {url + 'metrics' if url else '-'}",
        f"  Local buffer (SQLite):           {config.agent.buffer_path}",
        (
            f"  MQTT:                            {mqtt.host}:{mqtt.port}, topics {mqtt.root(config.agent.topic_root)}/#"
            if mqtt
            else "  MQTT:                            off (set MQTT_HOST=... to publish; records wait in the buffer)"
        ),
        (
            f"  InfluxDB:                        {influx.url}, bucket {influx.bucket}"
            if influx
            else "  InfluxDB:                        off (set INFLUX_URL=... to write; records wait in the buffer)"
        ),
        "  To acknowledge alarms on the page, add a user first:",
        f"    edge-agent user add NAME --role operator --config {config_path or 'CONFIG'}",
        "  Ctrl+C stops.",
        "",
    ]
    print("\n".join(lines), flush=True)
