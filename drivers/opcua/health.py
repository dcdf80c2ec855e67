"""The OPC UA driver's periodic check: certificates that run out within 30 days raise an alarm."""

from __future__ import annotations

__all__ = ["CERTIFICATE_RENEWED", "expiring_certificates"]

from pathlib import Path
from typing import Any

from drivers.plugin import HealthAlarm

CERTIFICATE_RENEWED = HealthAlarm("renewed", "certificate_renewed")


def expiring_certificates(_devices: dict[str, Any], pki: Path) -> dict[str, HealthAlarm]:
    """An alarm per certificate of the key folder (the agent's own, and the trusted servers')
    that expires within 30 days."""
    from drivers.opcua.pki import expiring  # cryptography: loaded only where OPC UA is used

    wanted = {}
    for key, what, until in expiring(pki):
        date = f"{until:%Y-%m-%d}"
        # The agent's own certificate is own/cert.der; trusted ones are named by fingerprint.
        wanted[f"certificate_{key}"] = HealthAlarm(
            f"{what} expires on {date}: renew or replace it",
            "certificate_expiry",
            {"what": "own" if key == "cert" else "trusted", "date": date},
        )
    return wanted
