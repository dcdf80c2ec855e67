"""Files we ship to users stay true: example configs load, README matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.docs import BEGIN, END, reference_markdown

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
