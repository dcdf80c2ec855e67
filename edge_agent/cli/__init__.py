"""`edge-agent` command line, one module per group of commands.

Every mistake a person can make ends in a message and an exit code, never a traceback:
2 for a configuration error, 1 for anything else that stops the agent.
"""

from __future__ import annotations

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "main"]

import argparse
import sys

from edge_agent.cli import configuration, maintenance, running, simulate
from edge_agent.cli.logs import setup_logging
from edge_agent.errors import ConfigError, EdgeAgentError

EXIT_CONFIG = 2
EXIT_FAILED = 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
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
    from drivers import PLUGINS as DRIVER_PLUGINS
    from edge_agent.access.commands import add_parsers as add_access_parsers

    p = argparse.ArgumentParser(prog="edge-agent", description="Shop-floor edge agent.")
    p.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    running.add_commands(sub)  # run, demo
    configuration.add_commands(sub)  # validate, schema
    simulate.add_commands(sub)
    maintenance.add_commands(sub)  # replay, alarm, buffer
    for driver in DRIVER_PLUGINS:  # a driver's own commands: `edge-agent opcua …`
        if driver.add_commands is not None:
            driver.add_commands(sub)
    add_access_parsers(sub)  # user, token
    return p
