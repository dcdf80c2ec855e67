"""Commands that connect to nothing run on a production configuration without its secrets.

On a plant PC the MQTT password and the InfluxDB token are in the service's environment or in
files only its user may read; an engineer looking at the buffer or replaying a CSV has neither.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.records import Record

CONFIG = """agent:
  id: line1
  buffer_path: {tmp}/outbox.db
  history_path: {tmp}/history.db
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      running: {{table: coil, address: 0, type: bool}}
sinks:
  mqtt:
    host: broker.plant
    username: line1
    password: ${{EA_TEST_MQTT_PASSWORD}}
  influxdb:
    url: https://influx.plant:8086
    token: ${{file:{tmp}/no-such-dir/influx-token}}
"""


async def _buffer_one_record(path: Path) -> None:
    outbox = Outbox(path)
    await outbox.open()
    outbox.append(Record("values", "press1", 1, {"device": "press1", "values": {"running": True}}))
    await outbox.close()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # no EA_TEST_MQTT_PASSWORD
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_without_the_secrets_only_what_connects_needs_them(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(CONFIG.format(tmp=tmp_path))
    csv = tmp_path / "samples.csv"
    csv.write_text("ts,device,tag,value\n2026-11-30T08:00:00+08:00,press1,running,true\n")

    full = run("validate", str(config))
    assert full.returncode == 2 and "Traceback" not in full.stderr
    assert "EA_TEST_MQTT_PASSWORD is not set" in full.stderr
    assert "cannot read secret file" in full.stderr

    offline = run("validate", "--offline", str(config))
    assert offline.returncode == 0, offline.stderr
    assert "OK: 1 device(s)" in offline.stdout

    asyncio.run(_buffer_one_record(tmp_path / "outbox.db"))
    buffer = run("buffer", str(config))
    assert buffer.returncode == 0, buffer.stderr
    assert "1 records" in buffer.stdout

    replayed = run("replay", str(config), "--input", str(csv))
    assert replayed.returncode == 0, replayed.stderr
    assert "1 sample batch(es) replayed" in replayed.stderr


def test_a_missing_variable_that_is_not_a_secret_is_still_an_error(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        CONFIG.format(tmp=tmp_path).replace("host: broker.plant", "host: ${EA_TEST_BROKER}")
    )
    offline = run("validate", "--offline", str(config))
    assert offline.returncode == 2
    assert "EA_TEST_BROKER is not set" in offline.stderr
    assert "EA_TEST_MQTT_PASSWORD" not in offline.stderr
