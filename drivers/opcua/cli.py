"""The OPC UA driver's commands: `edge-agent opcua trust` and `edge-agent opcua browse`."""

from __future__ import annotations

__all__ = ["add_commands"]

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.errors import EdgeAgentError

if TYPE_CHECKING:
    from drivers.opcua.tools import BrowsedNode


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """`edge-agent opcua trust URL` and `edge-agent opcua browse URL [NODE]`."""
    opcua = sub.add_parser("opcua", help="OPC UA helpers: trust a server, browse its nodes")
    opcua_sub = opcua.add_subparsers(required=True, metavar="ACTION")
    trust = opcua_sub.add_parser("trust", help="show a server's certificate and trust it")
    trust.add_argument("url")
    trust.add_argument("--config", type=Path, help="take the trust list path from this file")
    trust.add_argument("--yes", action="store_true", help="trust without asking")
    trust.set_defaults(command=_cmd_opcua_trust)
    browse = opcua_sub.add_parser(
        "browse",
        help="list a node's children (default: Objects) with their nsu= NodeIds",
        description="Without --device: URL, unsecured and anonymous. With --config and "
        "--device: the device's URL, security, user and the agent's own certificate.",
    )
    browse.add_argument("url", nargs="?", help="opc.tcp://host:4840 (not with --device)")
    browse.add_argument(
        "node",
        nargs="?",
        help="where to start: a NodeId (nsu=urn:…;s=Press, ns=2;s=Press, i=85) or a browse "
        "path from Objects (2:Press, 2:Press/2:Motor); default Objects",
    )
    browse.add_argument("--config", type=Path, help="the agent's configuration (with --device)")
    browse.add_argument("--device", help="an opcua device of --config: browse as the agent does")
    browse.add_argument("--depth", type=int, help="levels to go down (default 1; 4 with --yaml)")
    browse.add_argument(
        "--yaml", action="store_true", help="print the variables found as a tags: block"
    )
    browse.set_defaults(command=_cmd_opcua_browse)


def _cmd_opcua_trust(args: argparse.Namespace) -> int:
    from drivers.opcua.pki import fingerprint, trust
    from drivers.opcua.tools import server_certificates
    from edge_agent.config import load_config

    pki = load_config(args.config).agent.pki_path if args.config else Path("var/pki")
    try:
        found = asyncio.run(server_certificates(args.url))
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise EdgeAgentError(f"cannot reach {args.url}: {exc}") from None
    if not found:
        raise EdgeAgentError(f"{args.url} offers no secured endpoint: nothing to trust")
    certificates = {der: label for label, der in found}
    for der in certificates:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        print(f"server certificate of {args.url}:")
        print(f"  subject:     {cert.subject.rfc4514_string()}")
        print(
            f"  valid:       {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"
        )
        print(f"  SHA-256:     {fingerprint(der)}")
        if (
            not args.yes
            and input(
                "trust it? compare the fingerprint with the server's own display [y/N] "
            ).lower()
            != "y"
        ):
            print("not trusted")
            return 1
        print(f"trusted: {trust(pki, der)}")
    return 0


def _cmd_opcua_browse(args: argparse.Namespace) -> int:
    from drivers.opcua.tools import BrowseError

    depth = args.depth if args.depth is not None else (4 if args.yaml else 1)
    if not 1 <= depth <= 10:
        raise EdgeAgentError("--depth is from 1 to 10")
    where = args.url
    if args.device is not None or args.config is not None:
        if args.device is None or args.config is None:
            raise EdgeAgentError("--config and --device go together")
        if args.url is not None and args.node is None and not args.url.startswith("opc.tcp:"):
            args.node, args.url = args.url, None  # `browse --device D 2:Press`
        if args.url is not None:
            raise EdgeAgentError("give either a URL or --device, not both")
    elif args.url is None:
        raise EdgeAgentError(
            "give the server's URL (opc.tcp://host:4840), or --config and --device"
        )
    try:
        nodes, where = asyncio.run(_browse(args, depth))
    except BrowseError as exc:
        raise EdgeAgentError(f"{where or args.device}: {exc}") from None
    if args.yaml:
        _print_tags_yaml(nodes, args.node or "Objects", depth)
        return 0
    if not nodes:
        print(f"{args.node or 'Objects'} has no children")
    for n in nodes:
        detail = f"{n.data_type} = {n.value!r}" if n.node_class == "Variable" else n.node_class
        print(f"{n.node_id:<48} {n.path:<32} {detail}")
    return 0


async def _browse(args: argparse.Namespace, depth: int) -> tuple[list[BrowsedNode], str]:
    """The nodes found, and where: as --device is configured, or the URL unsecured."""
    from asyncua import Client, ua

    from drivers.opcua.config import OpcUaDeviceConfig
    from drivers.opcua.tools import browse
    from edge_agent.errors import ConnectError

    if args.device is not None:
        from drivers.opcua.driver import OpcUaDriver
        from edge_agent.config import load_config

        config = load_config(args.config)
        device = config.devices.get(args.device)
        if not isinstance(device, OpcUaDeviceConfig):
            opcua = [n for n, d in config.devices.items() if isinstance(d, OpcUaDeviceConfig)]
            raise EdgeAgentError(
                f"{args.config} has no opcua device {args.device} (it has: "
                f"{', '.join(opcua) or 'none'})"
            )
        driver = OpcUaDriver(
            args.device, device, agent_id=config.agent.id, pki=config.agent.pki_path
        )
        try:
            client = await driver.open_session()
        except ConnectError as exc:
            raise EdgeAgentError(str(exc)) from None
        url = device.url
    else:
        url = args.url
        client = Client(url, timeout=5.0)
        try:
            await client.connect()
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            raise EdgeAgentError(
                f"cannot browse {url}: {exc or type(exc).__name__}; a server that wants "
                "security or a login is browsed with --config CONFIG --device NAME"
            ) from None
    try:
        return await browse(client, args.node, depth=depth), url
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise EdgeAgentError(f"{url}: browsing stopped: {exc or type(exc).__name__}") from None
    except ua.UaStatusCodeError as exc:
        raise EdgeAgentError(f"{url}: the server refused: {ua.StatusCode(exc.code).name}") from None
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


def _print_tags_yaml(nodes: list[BrowsedNode], start: str, depth: int) -> None:
    variables = [n for n in nodes if n.node_class == "Variable"]
    if not variables:
        print(
            f"# no variables within {depth} level(s) below {start}: start deeper "
            "(a NodeId or path printed without --yaml) or raise --depth"
        )
        return
    print("    tags:")
    taken: set[str] = set()
    for n in variables:
        # The path below the start names the tag: Press/Motor/Current -> press_motor_current.
        words = [step.split(":", 1)[-1] for step in n.path.split("/")]
        name = base = _tag_name("_".join(words))
        count = 2
        while name in taken:
            name, count = f"{base}_{count}", count + 1
        taken.add(name)
        print(f"      {name}: {{node: '{n.node_id}'}}   # {n.data_type} = {n.value!r}")


def _tag_name(browse_name: str) -> str:
    """'SpindleTempC' -> 'spindle_temp_c': a tag name the configuration accepts."""
    import re

    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[^A-Za-z0-9]+", "_", browse_name).strip("_").lower()
    return snake if snake and not snake[0].isdigit() else f"n_{snake}"
