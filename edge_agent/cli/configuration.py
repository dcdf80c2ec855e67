"""`edge-agent validate` and `edge-agent schema`: a configuration file checked, its schema."""

from __future__ import annotations

__all__ = ["add_commands"]

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
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


def _cmd_schema(_args: argparse.Namespace) -> int:
    from edge_agent.config import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0
