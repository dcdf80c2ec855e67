"""Files we ship to users stay true: example configs load, README matches the models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.docs import BEGIN, END, reference_markdown
from edge_agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MQTT_HOST", "INFLUX_URL", "INFLUX_TOKEN"):
        monkeypatch.setenv(name, "example")
    config = load_config(path)
    assert config.devices


def test_readme_reference_is_generated_from_the_models() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == reference_markdown(), "run 'make docs' to regenerate README.md"


def test_every_key_in_the_reference_is_one_the_models_accept() -> None:
    """The reference lists keys as written in YAML (it once said `lambda_`, which is refused)."""
    from pydantic import ValidationError

    from edge_agent.docs import SECTIONS

    for title, model in SECTIONS:
        listed = re.findall(r"^\| `([^`]+)` \|", _section(title), re.M)
        assert listed, title
        for key in listed:
            try:
                model.model_validate({key: object()})
            except ValidationError as exc:
                unknown = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
                assert not unknown, f"{title}: {key} is listed but refused"


def _section(title: str) -> str:
    text = reference_markdown()
    start = text.index(f"#### `{title}`")
    end = text.find("#### ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _readme_examples() -> list[tuple[int, str]]:
    """(line, text) of each YAML example in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (readme.count("\n", 0, m.start()) + 2, m[1])
        for m in re.finditer(r"^```yaml\n(.*?)^```", readme, re.M | re.S)
    ]


A_DEVICE = "devices:\n  plc:\n    driver: modbus\n    host: h\n    tags:\n      t: {address: 0}\n"


@pytest.mark.parametrize(
    ("line", "example"),
    [
        pytest.param(line, text, id=f"README.md:{line}")
        for line, text in _readme_examples()
        if not text.startswith("alarms:")  # with the devices they name: the test below
    ],
)
def test_readme_examples_load(
    line: int, example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example as an integrator would paste it: with an agent id and a device where it shows
    none, and its secrets (files under /etc/edge-agent, variables) left to the plant PC."""
    for name in ("MQTT_HOST", "INFLUX_URL"):
        monkeypatch.setenv(name, "example")
    text = example
    if not re.search(r"^agent:", text, re.M):
        text = "agent: {id: readme}\n" + text
    if not re.search(r"^devices:", text, re.M):
        text += A_DEVICE
    path = tmp_path / f"readme-{line}.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path, secrets=False)
    except ConfigError as exc:
        raise AssertionError(f"README.md:{line}: {exc}") from None
    assert config.devices


def test_the_readme_shows_an_example_for_each_protocol_and_sink_type() -> None:
    examples = "\n".join(text for _, text in _readme_examples())
    for driver in ("modbus", "opcua", "s7", "mc", "fins"):
        assert re.search(rf"^\s+driver: {driver}$", examples, re.M), driver
    for sink in ("mqtt", "influxdb", "sparkplug"):
        assert re.search(rf"type: {sink}\b|^\s+{sink}:", examples, re.M), sink


def test_readme_alarm_examples_are_valid(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\nalarms:") + len("```yaml\n")
    example = readme[start : readme.index("```", start)]
    device = (
        "agent: {id: readme}\ndevices:\n  press1:\n    driver: modbus\n    host: h\n    tags:\n"
        "      spindle_temp_c: {address: 0}\n      oil_bar: {address: 1}\n      vibration_mm_s: {address: 2}\n"
        "      motor_current_a: {address: 3}\n      running: {table: coil, address: 0, type: bool}\n"
        "      total_count: {address: 4, type: uint32}\n"
    )
    path = tmp_path / "readme.yaml"
    path.write_text(device + example)
    config = load_config(path)
    assert {a.type for a in config.alarms} == {
        "limit",
        "vibration_zone",
        "ewma",
        "cusum",
        "rate",
        "trend",
        "run_hours",
        "cycles",
    }
