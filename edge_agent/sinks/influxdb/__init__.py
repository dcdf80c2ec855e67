"""InfluxDB (`type: influxdb`): line protocol (lineproto.py) written synchronously by sink.py, to
2.x/3.x through api v2 or to 1.x through v1."""

from __future__ import annotations

__all__ = ["INFLUXDB"]

from typing import TYPE_CHECKING

from edge_agent.sinks.base import SinkType
from edge_agent.sinks.influxdb.config import InfluxSinkConfig

if TYPE_CHECKING:
    from edge_agent.sinks.influxdb.sink import InfluxSink


def _load() -> type[InfluxSink]:
    # Imported only when configured: influxdb-client is 14 MiB of memory once loaded (api v2).
    from edge_agent.sinks.influxdb.sink import InfluxSink

    return InfluxSink


def _warnings(config: InfluxSinkConfig) -> list[tuple[tuple[str, ...], str]]:
    if not config.url.lower().startswith("http://"):
        return []
    # v2 sends its token, v1 its user's password (basic auth): either readable on the wire.
    secret = "token" if config.api == "v2" else "password"
    value = getattr(config, secret)
    if value is None or not value.get_secret_value():
        return []
    return [
        (
            ("url",),
            f"the {secret} goes to InfluxDB over http://, readable by anyone on the network; "
            "use an https:// URL",
        )
    ]


INFLUXDB = SinkType(
    name="influxdb",
    config=InfluxSinkConfig,
    load=_load,
    docs=(("sinks.<name> (type: influxdb)", InfluxSinkConfig),),
    warnings=_warnings,
)
