"""Logging of every command: one line per event, the libraries' own chatter kept down."""

from __future__ import annotations

__all__ = ["setup_logging"]

import logging
import os


def setup_logging(level: str | None) -> None:
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
    for noisy, threshold in quiet.items():
        logging.getLogger(noisy).setLevel(threshold)

    # Except one asyncua warning: an OPC UA user password about to travel in plain text (the
    # server's user token policy does not encrypt it and the channel is not SignAndEncrypt).
    # asyncua 2.1 logs it from asyncua.client.client as "Sending plain-text password".
    def plaintext_password_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL or record.msg == "Sending plain-text password"

    client = logging.getLogger("asyncua.client.client")
    client.setLevel(logging.WARNING)
    client.addFilter(plaintext_password_only)
