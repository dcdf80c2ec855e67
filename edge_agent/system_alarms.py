"""Alarms about the agent itself rather than a machine: what a driver's health check finds (OPC UA
certificates that run out within 30 days) and a buffer file that had to be moved aside."""

from __future__ import annotations

__all__ = ["damaged_buffer", "driver_health", "has_driver_health"]

from drivers import PLUGINS, plugin
from edge_agent.compute.alarms import AlarmManager
from edge_agent.config_models import AgentFile
from edge_agent.outbox import Outbox
from edge_agent.records import Record


def has_driver_health(config: AgentFile) -> bool:
    """Whether any configured device's driver has a health check (else no hourly timer)."""
    return any(plugin(d.driver).health for d in config.devices.values())


def driver_health(config: AgentFile, alarms: AlarmManager, now_ns: int) -> list[Record]:
    """Each driver's check over its devices, as system alarms raised and cleared."""
    records: list[Record] = []
    for driver in PLUGINS:
        if driver.health is None:
            continue
        devices = {n: d for n, d in config.devices.items() if d.driver == driver.name}
        if not devices:
            continue
        wanted = driver.health(devices, config.agent.pki_path)
        for alarm_id, text in wanted.items():
            records += alarms.system(
                alarm_id,
                now_ns,
                active=True,
                detail=text.detail,
                detail_key=text.detail_key,
                detail_args=text.detail_args,
            )
        cleared = driver.health_cleared
        for alarm_id in [a for a in alarms.alarms if a.startswith(driver.health_prefix)]:
            if alarm_id not in wanted and cleared is not None:
                records += alarms.system(
                    alarm_id,
                    now_ns,
                    active=False,
                    detail=cleared.detail,
                    detail_key=cleared.detail_key,
                )
    return records


def damaged_buffer(outbox: Outbox, alarms: AlarmManager, now_ns: int) -> list[Record]:
    """A buffer file that could not be read was moved aside: an alarm someone acknowledges."""
    if outbox.moved_aside is None:
        return []
    detail = (
        f"the buffer file could not be read ({outbox.damage}); it was moved aside as "
        f"{outbox.moved_aside} and a fresh one started"
    )
    args = {"error": outbox.damage, "aside": str(outbox.moved_aside)}
    records: list[Record] = []
    # Raised and returned at once: an event to acknowledge, not a condition that lasts.
    for active in (True, False):
        records += alarms.system(
            "buffer_corrupt",
            now_ns,
            active=active,
            detail=detail,
            detail_key="buffer_corrupt",
            detail_args=args,
        )
    return records
