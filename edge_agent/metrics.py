"""Prometheus metrics of one agent, on a registry of its own (several agents can share a process)."""

from __future__ import annotations

__all__ = ["Metrics"]

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # The agent's own CPU, memory and open files (process_*), read from /proc at each scrape:
        # the health dashboard shows them beside the devices and sinks.
        ProcessCollector(registry=r)
        self.polls = Counter("edge_device_polls", "Polls attempted", ["device"], registry=r)
        self.poll_errors = Counter(
            "edge_device_poll_errors", "Polls that failed", ["device"], registry=r
        )
        self.poll_overruns = Counter(
            "edge_device_poll_overruns",
            "Polls skipped: the previous one still ran",
            ["device"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "edge_device_poll_seconds",
            "Duration of a successful poll",
            ["device"],
            registry=r,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.values_read = Counter("edge_device_values", "Values read", ["device"], registry=r)
        self.timestamps_replaced = Counter(
            "edge_device_timestamps_replaced",
            "Device time stamps too far from the local clock, replaced by the time of receipt",
            ["device"],
            registry=r,
        )
        self.device_up = Gauge(
            "edge_device_up", "1 while the device answers", ["device"], registry=r
        )
        self.delivered = Counter(
            "edge_sink_delivered_records", "Records confirmed by the server", ["sink"], registry=r
        )
        self.sink_errors = Counter(
            "edge_sink_errors", "Failed delivery attempts", ["sink"], registry=r
        )
        self.sink_up = Gauge(
            "edge_sink_connected", "1 while the sink's server is reachable", ["sink"], registry=r
        )
        self.sink_pending = Gauge(
            "edge_sink_pending_records", "Records not yet confirmed", ["sink"], registry=r
        )
        self.dropped = Counter(
            "edge_sink_dropped_records",
            "Records dropped by the buffer limits before delivery",
            ["sink"],
            registry=r,
        )
        self.quarantined = Counter(
            "edge_sink_quarantined_records",
            "Records the server refused for their content, kept in the buffer's quarantine",
            ["sink"],
            registry=r,
        )
        self.unknown_kinds = Counter(
            "edge_sink_unknown_kind_records",
            "Records of a kind this version does not know (a buffer written by a newer "
            "version), passed over unsent",
            ["sink"],
            registry=r,
        )
        self.sink_conflicts = Counter(
            "edge_sink_conflicts",
            "Births of another Sparkplug edge node under this sink's group and edge node id "
            "(another agent publishing as this node)",
            ["sink"],
            registry=r,
        )
        self.oldest_pending = Gauge(
            "edge_sink_oldest_pending_seconds",
            "How long the oldest record not yet confirmed has waited in the buffer",
            ["sink"],
            registry=r,
        )
        self.polls_paused = Counter(
            "edge_device_polls_paused",
            "Polls left out because the buffer is full (buffer_full_policy stop_polling)",
            ["device"],
            registry=r,
        )
        self.outbox_full = Gauge(
            "edge_outbox_full",
            "1 while the buffer is at its size limit and polling pauses (stop_polling)",
            registry=r,
        )
        self.outbox_records = Gauge(
            "edge_outbox_records", "Records in the local buffer", registry=r
        )
        self.outbox_bytes = Gauge(
            "edge_outbox_bytes",
            "Size of the local buffer on disk (database and write-ahead log)",
            registry=r,
        )
        self.commands_refused = Counter(
            "edge_commands_refused",
            "MQTT commands refused, by reason (too_large, rate_limited, bad_request_id, "
            "malformed, bad_field, retired_topic, role, refused)",
            ["reason"],
            registry=r,
        )
        self.command_replies_dropped = Counter(
            "edge_command_replies_dropped",
            "Replies to MQTT commands dropped unsent: the oldest waiting one when the small "
            "reply queue was full (the broker down or slow)",
            registry=r,
        )
