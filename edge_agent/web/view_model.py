"""What the local page and /health show of a running agent (`/api/state`), as plain JSON-able data."""

from __future__ import annotations

__all__ = ["page_state"]

from typing import TYPE_CHECKING, Any

from edge_agent.redaction import scrub_tree
from edge_agent.timefmt import iso_utc

if TYPE_CHECKING:
    from edge_agent.agent import Agent


async def page_state(agent: Agent) -> dict[str, Any]:
    """Everything the local page shows, as plain JSON-able data.

    Scrubbed as a whole (secrets as ***, no credentials in URLs): error texts come from
    devices and servers, and a server that echoes what it was sent would put the token on
    /health and /api/state.
    """
    stats = await agent.outbox.stats()
    agent.metrics.outbox_records.set(stats["records"])
    agent.metrics.outbox_bytes.set(stats["bytes"])
    agent.metrics.outbox_full.set(int(agent.outbox.full))
    for runner in agent.sinks:  # computed when read, so a sink stuck in one delivery shows it
        agent.metrics.sink_pending.labels(runner.sink.name).set(runner.pending)
        agent.metrics.sink_up.labels(runner.sink.name).set(int(runner.sink.connected))
        agent.metrics.oldest_pending.labels(runner.sink.name).set(runner.oldest_pending_age_s)
    tags = agent.engine.tags
    devices = []
    for name, poller in agent.pollers.items():
        tag_configs = agent.config.devices[name].tags
        units = {t: getattr(c, "unit", None) for t, c in tag_configs.items()}
        values = tags.values.get(name, {})
        quality = tags.quality.get(name, {})
        devices.append(
            {
                "name": name,
                "display_name": agent.config.devices[name].display_name or name,
                "endpoint": poller.driver.endpoint,
                "up": poller.up,
                "error": poller.last_error,
                "last_ok": iso_utc(poller.last_ok_ns) if poller.last_ok_ns else None,
                "values": [
                    {
                        "tag": t,
                        "display_name": tag_configs[t].display_name or t,
                        "value": values.get(t),
                        "quality": str(quality.get(t, "bad")),
                        "unit": units[t],
                    }
                    for t in agent.config.devices[name].tags
                ],
            }
        )
    machines = []
    for name, tracker in agent.engine.machines.items():
        current = tracker.current
        window = "shift" if agent.engine.calendars.get(name) else "hour"
        machines.append(
            {
                "name": name,
                "display_name": agent.config.machines[name].display_name or name,
                "state": current.state if current else "unknown",
                "reason": current.reason if current else None,
                "since": iso_utc(current.since_ns) if current else None,
                "oee": agent.ingest.latest_oee.get((name, window)),
            }
        )
    sinks = [
        {
            "name": r.sink.name,
            "endpoint": r.sink.endpoint,
            "connected": r.sink.connected,
            "pending": r.pending,
            "oldest_pending_s": round(r.oldest_pending_age_s, 1),
            "error": r.error,
            "conflict": r.conflict,
            "quarantined": r.quarantined,
            "last_refusal": r.last_refusal,
        }
        for r in agent.sinks
    ]
    state: dict[str, Any] = {
        "agent": {
            "id": agent.config.agent.id,
            "language": agent.config.agent.language,
            "started": iso_utc(agent.started_ns),
            "topic_root": agent.config.agent.topic_root,
        },
        "devices": devices,
        "machines": machines,
        "alarms": agent.engine.alarms.states(),
        "sinks": sinks,
        "buffer": {
            "path": str(agent.config.agent.buffer_path),
            "max_bytes": agent.outbox.max_bytes,
            "full_policy": agent.outbox.full_policy,
            "dropping": agent.outbox.dropping,
            "full": agent.outbox.full,
            "dropped": agent.outbox.dropped,
            "write_error": agent.outbox.write_error,
            "unwritten_dropped": agent.outbox.unwritten_dropped,
            **stats,
        },
    }
    return scrub_tree(state)
