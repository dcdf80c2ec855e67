"""The sink registry: instances by name, the earlier form, load-time checks across instances."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config, load_config_with_warnings
from edge_agent.errors import ConfigError
from edge_agent.sinks import SINK_TYPES, sink_sections
from edge_agent.sinks.influxdb.config import InfluxSinkConfig
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.sparkplug.config import SparkplugSinkConfig


def _load(tmp_path: Path, sinks: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text("agent:\n  id: line1\nsinks:\n" + sinks)
    return path


def test_every_type_is_registered_with_its_model_and_reference() -> None:
    assert list(SINK_TYPES) == ["mqtt", "influxdb", "sparkplug"]
    for name, sink_type in SINK_TYPES.items():
        assert sink_type.config.model_fields["type"].default == name
        assert sink_type.docs[0] == (f"sinks.<name> (type: {name})", sink_type.config)
    titles = [title for title, _ in sink_sections()]
    assert titles.count("sinks.<name>.tls (mqtt, sparkplug)") == 1  # shared, listed once


def test_instances_by_name_and_the_earlier_form(tmp_path: Path) -> None:
    config = load_config(
        _load(
            tmp_path,
            "  mqtt: {host: a}\n"  # named after its type: type may be left out
            "  cloud: {type: mqtt, host: b, topic_prefix: acme/line1}\n"
            "  influxdb: {url: 'https://i:8086'}\n"
            "  uns: {type: sparkplug, host: a, group_id: 工厂1}\n"
            "  sparkplug: {host: c, group_id: G}\n"
            "  spare:\n"  # all its keys commented out: no sink
            "    # type: mqtt\n",
        )
    )
    sinks = config.sinks
    assert list(sinks) == ["mqtt", "cloud", "influxdb", "uns", "sparkplug"]
    assert isinstance(sinks["mqtt"], MqttSinkConfig) and isinstance(sinks["cloud"], MqttSinkConfig)
    assert isinstance(sinks["influxdb"], InfluxSinkConfig)
    assert isinstance(sinks["uns"], SparkplugSinkConfig)
    assert isinstance(sinks["sparkplug"], SparkplugSinkConfig)
    assert sinks["cloud"].root(config.agent.topic_root) == "acme/line1"
    assert sinks["mqtt"].root(config.agent.topic_root) == "edge/line1"


@pytest.mark.parametrize(
    ("sinks", "line", "path", "message"),
    [
        (
            "  a: {type: mqtt, host: b}\n  z: {type: mqtt, host: b, client_id: z}\n",
            5,
            "sinks.z.topic_prefix",
            "the topics edge/line1/# on b:1883 is taken by sink 'a'",
        ),
        (
            "  a: {type: sparkplug, host: b, group_id: G}\n"
            "  z: {type: sparkplug, host: b, group_id: G, client_id: z}\n",
            5,
            "sinks.z.edge_node_id",
            "the edge node G/line1 on b:1883 is taken by sink 'a'",
        ),
        (
            "  a: {type: mqtt, host: b, client_id: x}\n"
            "  z: {type: sparkplug, host: b, group_id: G, client_id: x}\n",
            5,
            "sinks.z.client_id",
            "client id x on b:1883 is taken by sink 'a'",
        ),
    ],
)
def test_two_sinks_cannot_take_the_same_on_one_broker(
    tmp_path: Path, sinks: str, line: int, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_load(tmp_path, sinks))
    (issue,) = caught.value.issues
    assert (issue.line, issue.path) == (line, path) and message in issue.message


def test_the_same_broker_for_different_things_is_fine(tmp_path: Path) -> None:
    """A JSON tree and a Sparkplug node on one broker, and a disabled duplicate."""
    load_config(
        _load(
            tmp_path,
            "  a: {type: mqtt, host: b}\n"
            "  uns: {type: sparkplug, host: b, group_id: G}\n"
            "  old: {type: mqtt, host: b, enabled: false}\n",
        )
    )


def test_plaintext_passwords_are_warned_about_by_sink_name(tmp_path: Path) -> None:
    _, warnings = load_config_with_warnings(
        _load(
            tmp_path,
            "  cloud: {type: mqtt, host: b, username: u, password: pw-1}\n"
            "  uns: {type: sparkplug, host: b, group_id: G, username: u, password: pw-2}\n"
            "  lake:\n    type: influxdb\n    url: http://i:8086\n    token: t-3\n",
        )
    )
    assert [(w.line, w.path) for w in warnings] == [
        (4, "sinks.cloud.password"),
        (5, "sinks.uns.password"),
        (8, "sinks.lake.url"),
    ]
