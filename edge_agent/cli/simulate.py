"""`edge-agent simulate`: presses to try a configuration without a PLC."""

from __future__ import annotations

__all__ = ["SIMULATOR_MAP", "add_commands", "start_opcua_press", "start_simulator"]

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from edge_agent.errors import EdgeAgentError
from edge_agent.stopping import run_until_stopped, stop_within

if TYPE_CHECKING:
    from drivers.plugin import SimulatedPress
    from drivers.sim.fleet import Fleet
    from drivers.sim.opcua_press import OpcUaPress

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

"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    sim = sub.add_parser(
        "simulate",
        help="serve simulated presses over Modbus TCP (and one over OPC UA)",
        description="Simulated presses to try a configuration without a PLC: press N on Modbus "
        "TCP port --port+N-1 (unit id 1), and one more on OPC UA. configs/demo.yaml reads them.",
        epilog=SIMULATOR_MAP + "".join(p.simulator.press_map for p in _simulated()),
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
    for driver in _simulated():
        sim.add_argument(
            f"--{driver.name}-port",
            type=int,
            default=0,
            help=f"also serve a press over {driver.simulator.protocol} on this port",
        )
    sim.set_defaults(command=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    async def serve(stop: asyncio.Event) -> None:
        fleet = await start_simulator(
            args.machines, args.host, args.port, args.seed, tuple(args.wear_per_hour)
        )
        stops: dict[str, Awaitable[None]] = {"the Modbus presses": fleet.stop()}
        where = ""
        try:
            if args.opcua_port:
                opcua = await start_opcua_press(args.opcua_port, args.host)
                stops["the OPC UA press"] = opcua.stop()
                where += f"; OPC UA {opcua.url}"
            for driver in _simulated():
                port = getattr(args, f"{driver.name}_port")
                if port:
                    stop_press, said = await _start_press(driver, args.host, port, args.seed + 100)
                    stops[f"the {driver.name} press"] = stop_press()
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


async def start_simulator(
    count: int, host: str, port: int, seed: int, wear: tuple[float, ...]
) -> Fleet:
    from drivers.sim.fleet import start_presses

    try:
        return await start_presses(count, host, port, seed, wear)
    except (OSError, RuntimeError) as exc:
        raise EdgeAgentError(f"cannot serve the simulator on {host}:{port}: {exc}") from None


def _simulated() -> list[SimulatedDriver]:
    """The drivers whose folder has a simulated press besides Modbus and OPC UA's."""
    from drivers import PLUGINS

    return [SimulatedDriver(p.name, p.simulator) for p in PLUGINS if p.simulator is not None]


class SimulatedDriver(NamedTuple):
    name: str
    simulator: SimulatedPress


async def _start_press(
    driver: SimulatedDriver, host: str, port: int, seed: int
) -> tuple[Callable[[], Awaitable[None]], str]:
    """One more simulated press over the driver's protocol: how to stop it, and where it is."""
    from drivers.sim.press import PressModel

    press = PressModel(seed=seed, start_s=time.time())
    try:
        return await driver.simulator.serve(press, host, port)
    except OSError as exc:
        raise EdgeAgentError(
            f"cannot serve the simulated {driver.name} press on port {port}: "
            f"{exc.strerror or exc} (is another simulator or server using it?); choose another "
            f"--{driver.name}-port"
        ) from None


async def start_opcua_press(port: int = 4840, host: str = "127.0.0.1") -> OpcUaPress:
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
