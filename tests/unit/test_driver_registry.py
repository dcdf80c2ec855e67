"""The driver registry: what every plugin gives the core, and the checks and types it owns."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers import PLUGINS, plugin
from edge_agent.config import load_config, load_config_with_warnings
from edge_agent.config_types import DeviceSettings
from edge_agent.errors import ConfigError
from edge_agent.replay import ReplayError, iter_batches

# The fields the core reads of any device (edge_agent.config_types.DeviceSettings).
CORE_FIELDS = [
    name for name in vars(DeviceSettings) if not name.startswith("_") and name != "__init__"
]


def test_the_core_fields_are_the_protocol_s() -> None:
    assert sorted(CORE_FIELDS) == sorted(
        ["driver", "display_name", "poll_interval_s", "timeout_s", "backoff_max_s", "tags"]
    )


@pytest.mark.parametrize("driver", PLUGINS, ids=lambda p: p.name)
def test_every_device_model_has_what_the_core_reads(driver: object) -> None:
    model = driver.device_config  # type: ignore[attr-defined]
    missing = [name for name in CORE_FIELDS if name not in model.model_fields]
    assert not missing, f"{model.__name__} lacks {missing}"
    assert model.model_fields["driver"].annotation.__args__ == (driver.name,)  # type: ignore[attr-defined]


def _file(tmp_path: Path, devices: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text("agent: {id: t}\ndevices:\n" + devices)
    return path


def test_a_driver_s_own_load_time_check_names_file_and_line(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "  plc:\n"
        "    driver: modbus\n"
        "    host: 127.0.0.1\n"
        "    addressing: 1\n"
        "    tags:\n"
        "      n: {table: holding, address: 0}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:8" in str(caught.value)
    assert "address 0 does not exist with addressing 1" in str(caught.value)


def test_a_driver_s_own_warning_is_a_warning(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "  ua:\n"
        "    driver: opcua\n"
        "    url: opc.tcp://127.0.0.1:4840\n"
        "    security: none\n"
        "    username: op\n"
        "    password: secret\n"
        "    tags: {x: {node: 'ns=2;s=X'}}\n",
    )
    _config, warnings = load_config_with_warnings(path)
    assert len(warnings) == 1
    assert str(warnings[0]).startswith(f"{path}:6: devices.ua.security: security none")


@pytest.mark.parametrize(
    ("driver", "tag", "declared"),
    [
        ("modbus", {"table": "holding", "address": 0, "type": "float32"}, "float32"),
        ("modbus", {"table": "holding", "address": 0, "type": "string", "length": 4}, "string"),
        ("opcua", {"node": "ns=2;s=X"}, None),
        ("s7", {"address": "DB1.DBW2"}, "int"),  # implied by the address
        ("s7", {"address": "DB1.DBD4", "type": "real"}, "real"),
        ("mc", {"address": "D100"}, "int16"),
        ("fins", {"address": "CIO10.01"}, "bool"),
    ],
)
def test_each_driver_says_what_type_its_tags_hold(
    driver: str, tag: dict[str, object], declared: str | None
) -> None:
    found = plugin(driver)
    settings = found.device_config.model_fields["tags"].annotation.__args__[1]
    assert found.tag_type(settings.model_validate(tag)) == declared


def test_a_replayed_csv_is_checked_against_an_s7_tag_s_type(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "  plc:\n"
        "    driver: s7\n"
        "    host: 127.0.0.1\n"
        "    tags:\n"
        "      speed: {address: DB1.DBD4, type: real}\n"
        "      name: {address: DB1.DBS10, length: 8}\n",
    )
    config = load_config(path)
    samples = tmp_path / "samples.csv"
    samples.write_text(
        "ts,device,tag,value\n"
        "2026-03-02T06:00:00Z,plc,name,Kunde A\n"  # text in a string tag is a value
        "2026-03-02T06:00:01Z,plc,speed,fast\n"
    )
    with pytest.raises(ReplayError) as caught:
        list(iter_batches(samples, config))
    assert f"{samples}:3" in str(caught.value)
    assert "'fast' is not a number, and plc.speed is a real tag" in str(caught.value)
