"""`edge-agent` command line: run, validate, schema, simulate, demo.

Every mistake a person can make ends in a message and an exit code, never a traceback:
2 for a configuration error, 1 for anything else that stops the agent.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.access import AccessError, AccessStore
from edge_agent.access.commands import add_parsers as add_access_parsers
from edge_agent.errors import ConfigError, EdgeAgentError
from edge_agent.stopping import StopRequest, run_until_stopped, stop_within

if TYPE_CHECKING:
    from drivers.sim.fleet import Fleet
    from drivers.sim.opcua_press import OpcUaPress
    from edge_agent.config_models import AgentFile

EXIT_CONFIG = 2
EXIT_FAILED = 1
_log = logging.getLogger("edge_agent")
_GIL_TURN_S = 0.001  # see _run_agent
SIMULATOR_MAP = """\
Modbus map of every press (wire addresses from 0, big-endian ABCD, unit id 1):
  coil 0              running           bool
  discrete_input 0    door_closed       bool
  holding 0           fault_code        uint16: 0 none, 1 die jam, 2 material feed error,
                                        3 hydraulic pressure low, 4 safety door opened,
                                        5 main bearing overload
  holding 2           total_count       uint32 (registers 2-3), parts made
  holding 4           good_count        uint32 (registers 4-5), good parts
  holding 6           stroke_counter16  uint16, parts made, wraps at 65536
  input 0             spindle_temp_c    float32 (registers 0-1), deg C
  input 2             vibration_mm_s    float32 (registers 2-3), mm/s RMS
  input 4             motor_current_da  uint16, 0.1 A (scale: 0.1 gives amperes)

OPC UA press: opc.tcp://127.0.0.1:<--opcua-port>/edge-agent/sim, security None, namespace URI
urn:edge-agent:sim, nodes nsu=urn:edge-agent:sim;s=Press.<Name>:
  live:  Running (Boolean), FaultCode (UInt16), TotalCount (UInt32), GoodCount (UInt32),
         SpindleTempC (Double), VibrationMmS (Double)
  fixed: Temperature 71.25 (Double), Pressure 4.5 (Float), Alarm -3 (Int16),
         Serial 9007199254740993 (Int64), Mode "AUTO" (String), Enabled true (Boolean),
         Broken (status BadSensorFailure), Doubtful (status UncertainLastUsableValue)
Port 4840 taken (another OPC UA server, a second simulator)? --opcua-port 0 leaves the OPC UA
press out, --opcua-port N moves it.

Siemens S7 press (--s7-port P; rack 0, slot 1; README "S7" has its tags: block):
  DB1.DBX0.0 running, DB1.DBX0.1 door_closed, DB1.DBW2 fault_code (INT),
  DB1.DBD4 total_count (DINT), DB1.DBD8 good_count (DINT), DB1.DBD12 spindle_temp_c (REAL),
  DB1.DBD16 vibration_mm_s (REAL), DB1.DBW20 motor current (0.1 A), DB1.DBB22 fault text
  (STRING[32]), I0.1 door switch, Q0.0 drive on
Mitsubishi press (--mc-port P; MC protocol 3E binary, Q series addressing):
  M0 running, X0 door_closed, D0 fault_code, D2-D3 total_count (uint32, low word first),
  D4-D5 good_count, D6 stroke_counter16, D10-D11 spindle_temp_c (float32),
  D12-D13 vibration_mm_s (float32), D14 motor current (0.1 A)
Omron press (--fins-port P; FINS over UDP and TCP, node of the PLC: 0 = any):
  CIO0.00 running, CIO0.01 door_closed, D0 fault_code, D2-D3 total_count (UDINT, low word
  first), D4-D5 good_count, D6 stroke_counter16, D10-D11 spindle_temp_c (REAL),
  D12-D13 vibration_mm_s (REAL), D14 motor current (0.1 A), C0 stroke counter (BCD)
"""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.command(args) or 0)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"error: {issue}", file=sys.stderr)
        print(
            f"{len(exc.issues)} problem(s) in the configuration; nothing was started.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except EdgeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-agent", description="Shop-floor edge agent.")
    p.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent on a configuration file")
    run.add_argument("config", type=Path)
    run.set_defaults(command=_cmd_run)

    validate = sub.add_parser(
        "validate", help="check a configuration file without connecting to anything"
    )
    validate.add_argument("config", type=Path)
    validate.add_argument(
        "--offline",
        action="store_true",
        help="without the secrets: a password or token from ${VAR} or ${file:…} that cannot "
        "be read here is not an error (on a PC where only the service's user may read them)",
    )
    validate.set_defaults(command=_cmd_validate)

    schema = sub.add_parser("schema", help="print the JSON Schema of configuration files")
    schema.set_defaults(command=_cmd_schema)

    sim = sub.add_parser(
        "simulate",
        help="serve simulated presses over Modbus TCP (and one over OPC UA)",
        description="Simulated presses to try a configuration without a PLC: press N on Modbus "
        "TCP port --port+N-1 (unit id 1), and one more on OPC UA. configs/demo.yaml reads them.",
        epilog=SIMULATOR_MAP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--machines", type=int, default=2)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument(
        "--port", type=int, default=5020, help="first port; press N listens on port+N-1"
    )
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--wear-per-hour",
        type=float,
        nargs="*",
        default=[],
        help="bearing wear of each press, mm/s of vibration per running hour",
    )
    sim.add_argument(
        "--opcua-port",
        type=int,
        default=4840,
        help="also serve a press over OPC UA on this port (0: no OPC UA press)",
    )
    for flag, what in (
        ("s7", "Siemens S7"),
        ("mc", "the Mitsubishi MC protocol"),
        ("fins", "Omron FINS"),
    ):
        sim.add_argument(
            f"--{flag}-port",
            type=int,
            default=0,
            help=f"also serve a press over {what} on this port",
        )
    sim.set_defaults(command=_cmd_simulate)

    replay = sub.add_parser("replay", help="run the compute core over recorded samples (CSV)")
    replay.add_argument("config", type=Path)
    replay.add_argument(
        "--input", type=Path, required=True, help="CSV: ts,device,tag,value[,quality]"
    )
    replay.add_argument("--until", help="advance time to this ISO 8601 instant, closing windows")
    replay.add_argument("--output", type=Path, help="JSON Lines file (default: standard output)")
    replay.add_argument("--state", type=Path, help="resume from this state file and save to it")
    replay.set_defaults(command=_cmd_replay)

    alarm = sub.add_parser(
        "alarm", help="list alarms, or ack / shelve / reset one, on a running agent"
    )
    alarm.add_argument(
        "action",
        choices=["list", "ack", "shelve", "unshelve", "reset", "out_of_service", "in_service"],
    )
    alarm.add_argument("id", nargs="?", help="alarm id (not for list)")
    alarm.add_argument(
        "--for",
        dest="duration_s",
        type=float,
        help="seconds: for shelve (required, at most 7 days) and out_of_service (default "
        "agent.out_of_service_default_h, at most agent.out_of_service_max_days)",
    )
    alarm.add_argument(
        "--reason", help="why (a work order, a fault): required for shelve and out_of_service"
    )
    alarm.add_argument(
        "--token",
        default=os.environ.get("EDGE_AGENT_TOKEN"),
        help="an API token ('edge-agent token create'); default: $EDGE_AGENT_TOKEN",
    )
    alarm.add_argument(
        "--config",
        type=Path,
        help="the agent's configuration: its local page's port is taken from there",
    )
    alarm.add_argument(
        "--url", help="the agent's local page (default: from --config, else http://127.0.0.1:8080)"
    )
    alarm.set_defaults(command=_cmd_alarm)

    buffer = sub.add_parser(
        "buffer", help="what waits in the local buffer, and the records servers refused"
    )
    buffer.add_argument("config", type=Path, help="the agent's configuration (for the file path)")
    buffer.add_argument("--limit", type=int, default=20, help="refused records to show")
    buffer.add_argument("--json", action="store_true", help="print JSON")
    buffer.set_defaults(command=_cmd_buffer)

    from drivers import PLUGINS as DRIVER_PLUGINS

    for driver in DRIVER_PLUGINS:  # a driver's own commands: `edge-agent opcua …`
        if driver.add_commands is not None:
            driver.add_commands(sub)

    add_access_parsers(sub)

    demo = sub.add_parser("demo", help="simulated presses plus the agent on configs/demo.yaml")
    demo.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    demo.set_defaults(command=_cmd_demo)
    return p


def _setup_logging(level: str | None) -> None:
    from edge_agent.redaction import SafeLogFormatter

    # Texts of devices, servers and users end up in log lines: each line is scrubbed of the
    # configuration's secrets and of credentials in URLs, and stays one line (control
    # characters escaped), so nothing can forge a second line or colour a terminal.
    handler = logging.StreamHandler()
    handler.setFormatter(
        SafeLogFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    logging.basicConfig(
        level=level or os.environ.get("EDGE_AGENT_LOG_LEVEL", "INFO"), handlers=[handler]
    )
    # The libraries' own logs repeat what the agent reports once per state change.
    quiet = {
        "pymodbus": logging.CRITICAL,
        "asyncua": logging.CRITICAL,
        "snap7": logging.CRITICAL,  # a line per client, connect and disconnect
        "apscheduler.executors": logging.WARNING,
        "apscheduler.scheduler": logging.ERROR,  # skipped runs are counted as overruns instead
    }
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)

    # Except one asyncua warning: an OPC UA user password about to travel in plain text (the
    # server's user token policy does not encrypt it and the channel is not SignAndEncrypt).
    # asyncua 2.1 logs it from asyncua.client.client as "Sending plain-text password".
    def plaintext_password_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL or record.msg == "Sending plain-text password"

    client = logging.getLogger("asyncua.client.client")
    client.setLevel(logging.WARNING)
    client.addFilter(plaintext_password_only)


def _cmd_validate(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config_with_warnings

    # Warnings (a password that would travel in plain text) do not fail the check; `run` logs them.
    config, warnings = load_config_with_warnings(args.config, secrets=not args.offline)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    tags = sum(len(d.tags) for d in config.devices.values())
    print(
        f"{args.config}: OK: {len(config.devices)} device(s), {tags} tag(s), "
        f"{len(config.machines)} machine(s), {len(config.alarms)} alarm(s)"
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.replay import ReplayError, checked_ts_ns, iter_batches, replay

    config = load_config(args.config, secrets=False)  # replays offline: no server is spoken to
    until_ns = None
    if args.until:
        try:
            until_ns = checked_ts_ns(args.until)
        except ValueError as exc:
            raise ReplayError(f"--until {args.until!r} {exc}") from None
    # iter_batches checks the whole file before it returns: a broken one leaves --output alone.
    with contextlib.closing(iter_batches(args.input, config)) as batches:
        if args.output is None:
            counts = replay(config, batches, sys.stdout, until_ns=until_ns, state_file=args.state)
        else:
            with args.output.open("w", encoding="utf-8") as out:
                counts = replay(config, batches, out, until_ns=until_ns, state_file=args.state)
    print(
        f"{counts.batches} sample batch(es) replayed, {counts.records} record(s) written",
        file=sys.stderr,
    )
    return 0


def _cmd_buffer(args: argparse.Namespace) -> int:
    from edge_agent.buffer_inspect import inspect_buffer
    from edge_agent.config import load_config
    from edge_agent.timefmt import iso_utc

    info = inspect_buffer(load_config(args.config, secrets=False).agent.buffer_path, args.limit)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    age = info["oldest_record_age_s"]
    print(
        f"{info['path']}: {info['records']} records, {info['bytes'] / 1e6:.1f} MB on disk"
        + (f", the oldest from {age} s ago" if age is not None else "")
    )
    for sink, cursor in info["sinks"].items():
        print(f"  {sink}: {cursor['pending']} records to deliver")
    print(f"{info['quarantined']} record(s) refused by a server and kept aside")
    for row in info["quarantine"]:
        body = row["body"] if len(row["body"]) <= 200 else row["body"][:200] + "…"
        print(
            f"  {iso_utc(row['at_ns'])} {row['sink']} refused {row['kind']} {row['key']} "
            f"(seq {row['seq']}): {row['error']}\n    {body}"
        )
    return 0


def _cmd_alarm(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    base = _page_url(args).rstrip("/")
    if args.action == "list":
        request = urllib.request.Request(f"{base}/api/alarms")
    else:
        if not args.id:
            raise EdgeAgentError(f"'alarm {args.action}' needs an alarm id")
        if not args.token:
            raise EdgeAgentError(
                "a command needs an API token: --token or EDGE_AGENT_TOKEN (make one with "
                "'edge-agent token create --name NAME --role operator --config FILE')"
            )
        body = {
            **({"duration_s": args.duration_s} if args.duration_s else {}),
            **({"reason": args.reason} if args.reason else {}),
        }
        host = urllib.parse.urlsplit(base).netloc
        request = urllib.request.Request(
            f"{base}/api/alarms/{args.id}/{args.action}",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {args.token}",
                "Host": host,
            },
            method="POST",
        )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reply = json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError) as exc:
        raise EdgeAgentError(
            f"no agent answers at {base} ({exc}); is it running with agent.http on?"
        ) from None
    if args.action == "list":
        for a in reply["alarms"]:
            print(f"{a['id']:<24} {a['state']:<15} {a['priority']:<7} {a['detail'] or ''}")
        return 0
    if not reply.get("ok"):
        raise EdgeAgentError(reply.get("error", "the agent refused the command"))
    print(f"{reply['id']}: {reply['command']} done; state {reply['state']}")
    return 0


def _page_url(args: argparse.Namespace) -> str:
    """--url, else the local page of the agent --config describes, else the default port."""
    if args.url:
        return str(args.url)
    if args.config is None:
        return "http://127.0.0.1:8080"
    from edge_agent.config import load_config

    http = load_config(args.config, secrets=False).agent.http
    if not http.enabled:
        raise EdgeAgentError(f"{args.config}: agent.http is off, so the agent has no page to ask")
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{http.port}"


def _cmd_schema(_args: argparse.Namespace) -> int:
    from edge_agent.config import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)
    if args.log_level is None:
        logging.getLogger().setLevel(config.agent.log_level)
    return run_until_stopped(lambda stop: _run_agent(config, stop, banner=False))


def _cmd_simulate(args: argparse.Namespace) -> int:
    async def serve(stop: asyncio.Event) -> None:
        fleet = await _start_simulator(
            args.machines, args.host, args.port, args.seed, tuple(args.wear_per_hour)
        )
        stops = {"the Modbus presses": fleet.stop()}
        where = ""
        try:
            if args.opcua_port:
                opcua = await _start_opcua_press(args.opcua_port, args.host)
                stops["the OPC UA press"] = opcua.stop()
                where += f"; OPC UA {opcua.url}"
            for protocol, port in (
                ("s7", args.s7_port),
                ("mc", args.mc_port),
                ("fins", args.fins_port),
            ):
                if port:
                    stop_press, said = await _start_press(
                        protocol, args.host, port, args.seed + 100
                    )
                    stops[f"the {protocol} press"] = stop_press()
                    where += f"; {said}"
        except BaseException:
            await stop_within(stops, 2.0)
            raise
        print(
            f"{args.machines} simulated press(es) on {args.host}, Modbus TCP ports {fleet.ports}{where}; "
            "Ctrl+C stops.",
            flush=True,
        )
        await stop.wait()
        await stop_within(stops, 2.0)

    return run_until_stopped(serve)


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
        fleet = await _start_simulator(2, "127.0.0.1", 5020, 1, (6.0, 0.0))
        opcua = await _start_opcua_press()
        try:
            await _run_agent(config, stop, banner=True, config_path=args.config)
        finally:
            if isinstance(stop, StopRequest):
                stop.step = "stopping the simulated presses"
            # asyncua's server takes up to 1 s to stop (its clock task sleeps a second at a time).
            await stop_within({"the OPC UA press": opcua.stop(), "the presses": fleet.stop()}, 1.5)

    return run_until_stopped(demo)


async def _start_simulator(
    count: int, host: str, port: int, seed: int, wear: tuple[float, ...]
) -> Fleet:
    from drivers.sim.fleet import start_presses

    try:
        return await start_presses(count, host, port, seed, wear)
    except (OSError, RuntimeError) as exc:
        raise EdgeAgentError(f"cannot serve the simulator on {host}:{port}: {exc}") from None


async def _start_press(
    protocol: str, host: str, port: int, seed: int
) -> tuple[Callable[[], Awaitable[None]], str]:
    """One more simulated press over S7, MC or FINS: how to stop it, and where it is."""
    from drivers.sim.press import PressModel

    press = PressModel(seed=seed, start_s=time.time())
    try:
        if protocol == "s7":
            from drivers.s7.sim import serve_press as serve_s7

            s7 = await serve_s7(press, host, port)
            return s7.stop, f"S7 {host}:{s7.port} (rack 0, slot 1)"
        if protocol == "mc":
            from drivers.mc.sim import serve_press as serve_mc

            mc = await serve_mc(press, host, port)
            return mc.stop, f"MC protocol {host}:{port}"
        from drivers.fins.sim import serve_press as serve_fins

        fins = await serve_fins(press, host, port)
        return fins.stop, f"FINS UDP and TCP {host}:{port}"
    except OSError as exc:
        raise EdgeAgentError(
            f"cannot serve the simulated {protocol} press on port {port}: "
            f"{exc.strerror or exc} (is another simulator or server using it?); choose another "
            f"--{protocol}-port"
        ) from None


async def _start_opcua_press(port: int = 4840, host: str = "127.0.0.1") -> OpcUaPress:
    from drivers.sim.opcua_press import serve_opcua_press

    # asyncua logs its own traceback of a port in use before raising: the message below says it.
    server_log = logging.getLogger("asyncua.server.server")
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)
    try:
        return await serve_opcua_press(host, port, seed=3)
    except OSError as exc:
        raise EdgeAgentError(
            f"cannot serve the simulated OPC UA press on port {port}: {exc.strerror} (is "
            "`edge-agent simulate` or another OPC UA server running?); --opcua-port 0 leaves "
            "the OPC UA press out, --opcua-port N puts it on another port"
        ) from None
    finally:
        server_log.setLevel(level)


async def _run_agent(
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
                agent.snapshot,
                agent.metrics.registry,
                agent.command,
                access=access,
                hostnames=tuple(http.hostnames),
                open_read=http.open_read,
                reads={
                    **HistoryApi(
                        config, agent.history, lambda: agent.latest_oee, current=agent.current_state
                    ).routes(),
                    **ReportApi(config, agent.history, lambda: agent.latest_oee).routes(),
                    "/api/meta": read_meta(config),
                },
                actions=OperatorApi(
                    config, agent.history, lambda: agent.engine, agent.publish
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
