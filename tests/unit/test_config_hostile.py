"""Hostile or careless configuration: bombs, huge and endless files, deep nesting, rules built to
break the evaluator, secrets of any YAML type, shipped placeholders and plaintext credentials.

Every case ends in a ConfigError naming file and line (where there is one) within a few seconds:
never a hang, a MemoryError or a RecursionError. Cases that would hang the code they guard against
(a FIFO, /dev/zero) run in a subprocess with a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.compute.expression import Expression, ExpressionError
from edge_agent.config import load_config, load_config_with_warnings
from edge_agent.errors import ConfigError, ConfigIssue

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
SECONDS = 5.0  # generous for a slow machine: the point is "no hang", each case takes well under 2 s

_TRACEBACK_SIGNS = ("Traceback", "RecursionError", "MemoryError", 'File "')

_DEVICE = """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      running: {table: coil, address: 0, type: bool}
      values: {table: holding, address: 0}
"""


def _write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _issues(path: Path) -> list[ConfigIssue]:
    """The issues of a file that must not load, within SECONDS; any other outcome fails."""
    started = time.monotonic()
    try:
        load_config(path)
    except ConfigError as exc:
        issues = exc.issues
    except BaseException as exc:  # RecursionError and MemoryError are failures, not errors
        pytest.fail(f"load_config raised {type(exc).__name__} instead of ConfigError: {exc}")
    else:
        pytest.fail(f"{path.name} loaded without an error")
    elapsed = time.monotonic() - started
    assert elapsed < SECONDS, f"{elapsed:.1f} s to refuse {path.name}"
    assert issues
    for issue in issues:
        assert issue.file == str(path)
        for sign in _TRACEBACK_SIGNS:
            assert sign not in issue.message, issue
    return issues


def _one(path: Path, line: int | None, text: str, dotted: str = "") -> ConfigIssue:
    issues = _issues(path)
    listing = "\n".join(str(i) for i in issues)
    matching = [i for i in issues if text in i.message]
    assert matching, f"no issue says {text!r}:\n{listing}"
    issue = matching[0]
    assert (issue.line, issue.path) == (line, dotted), listing
    # As the CLI prints it: `file:line: path: message`.
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(issue).startswith(where), str(issue)
    return issue


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A timeout, so that a regression that hangs (reading a FIFO, /dev/zero) fails the test.
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        cwd=ROOT,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _assert_cli_refuses(path: Path, expected: str) -> str:
    started = time.monotonic()
    done = _cli("validate", str(path))
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert any(expected in line for line in errors), done.stderr
    assert all(line.startswith(f"error: {path}") for line in errors), done.stderr
    assert elapsed < 15, f"{elapsed:.1f} s"  # the interpreter's start included
    return done.stderr


# ------------------------------------------------------------------------------ the file itself

_ALIAS_BOMB = """\
agent:
  id: line3
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb(tmp_path: Path) -> None:
    # 9^9 strings once expanded; the limit is crossed on line 8 (9^6 = 531441 > 100000).
    issue = _one(_write(tmp_path, _ALIAS_BOMB), 8, "aliases")
    assert "100000" in issue.message


def test_alias_bomb_through_merge_keys(tmp_path: Path) -> None:
    text = "agent:\n  id: line3\nm0: &m0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}\n"
    for level in range(1, 8):
        merged = ", ".join(f"*m{level - 1}" for _ in range(10))
        text += f"m{level}: &m{level} {{<<: [{merged}], x{level}: [{merged}]}}\n"
    # Each level holds twenty of the one before: m3, on line 6, is some 170,000 values.
    _one(_write(tmp_path, text), 6, "aliases")


def test_alias_bomb_cli(tmp_path: Path) -> None:
    path = _write(tmp_path, _ALIAS_BOMB)
    _assert_cli_refuses(path, f"{path}:8: ")


def test_alias_inside_its_own_anchor(tmp_path: Path) -> None:
    # ruamel.yaml silently reads such an alias as null; it is refused instead.
    text = "agent: &agent\n  id: line3\n  http: *agent\n"
    _one(_write(tmp_path, text), 3, "inside its own anchor")


def test_aliases_and_merge_keys_that_configs_use_still_load(tmp_path: Path) -> None:
    # Forty presses sharing one block through `<<: *press`, and one reason table through an alias.
    text = _DEVICE.replace("  press1:\n", "  press1: &press\n")
    text += "".join(f"  press{n}:\n    <<: *press\n    port: {5000 + n}\n" for n in range(2, 41))
    text += (
        "machines:\n  press1:\n    ideal_cycle_time_s: 1\n    state: {running: press1.running}\n"
    )
    text += "    reasons: &reasons {1: Die jam, 2: Feed}\n"
    text += "  press2:\n    ideal_cycle_time_s: 1\n    state: {running: press2.running}\n"
    text += "    reasons: *reasons\n"
    config = load_config(_write(tmp_path, text))
    assert len(config.devices) == 40
    assert config.devices["press40"].port == 5040
    assert config.machines["press2"].reasons["2"].text == "Feed"


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_100_deep(tmp_path: Path, style: str) -> None:
    if style == "flow":
        text = "agent:\n  id: line3\ndeep: " + "[" * 100 + "]" * 100 + "\n"
        line = 3
    else:
        text = "agent:\n  id: line3\ndeep:\n" + "".join("  " * n + "k:\n" for n in range(1, 101))
        line = 4 + 31  # the 33rd mapping: the root, then one starting on each line from 4
    _one(_write(tmp_path, text), line, "nested deeper than 32")


def test_nesting_5000_deep_is_refused_quickly(tmp_path: Path) -> None:
    # Unchecked, ruamel.yaml's composer recurses once per level: RecursionError.
    text = "agent:\n  id: line3\ndeep: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"
    _one(_write(tmp_path, text), 3, "nested deeper than 32")


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    # 2 MiB, most of it comments: refused before it is read.
    path = _write(tmp_path, "agent:\n  id: line3\n" + ("# " + "x" * 1021 + "\n") * 2048)
    assert path.stat().st_size > 2 * 1024 * 1024
    issue = _one(path, None, "at most 1 MiB")
    assert "2.0 MiB" in issue.message


def test_too_many_values_without_aliases(tmp_path: Path) -> None:
    text = "agent:\n  id: line3\nx: [" + ", ".join(["1"] * 150_000) + "]\n"
    _one(_write(tmp_path, text), 3, "more than 100000 values")


def test_integer_longer_than_python_converts(tmp_path: Path) -> None:
    # Python refuses int() of more than 4300 digits with a ValueError: a traceback before this fix.
    text = "agent:\n  id: line3\n  buffer_max_mb: " + "1" * 5000 + "\n"
    _one(_write(tmp_path, text), 3, "5000 digits")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("[1, 2024-13-45]", "month must be in 1..12"),  # read as a date by YAML
        ("!!float abc", "abc"),
        ("!!int 1.5", "1.5"),
    ],
    ids=["date", "float", "int"],
)
def test_value_yaml_cannot_convert(tmp_path: Path, value: str, text: str) -> None:
    # ruamel.yaml raises ValueError from deep inside: a traceback before this fix.
    issue = _one(_write(tmp_path, f"agent:\n  id: line3\nx: {value}\n"), 3, "cannot be read")
    assert text in issue.message


def test_ordered_map_tag(tmp_path: Path) -> None:
    # `!!omap` made a mapping without line data: a TypeError before this fix.
    _one(_write(tmp_path, "agent:\n  id: line3\nx: !!omap [a: 1]\n"), 3, "unknown key", "x")


def test_config_is_a_directory(tmp_path: Path) -> None:
    _one(tmp_path, None, "not a regular file (a directory)")


def test_config_is_a_fifo(tmp_path: Path) -> None:
    # Opening a FIFO for reading waits for a writer: for ever, unless it is refused unopened.
    fifo = tmp_path / "agent.yaml"
    os.mkfifo(fifo)
    _assert_cli_refuses(fifo, "not a regular file (a FIFO)")


def test_config_is_dev_zero() -> None:
    _assert_cli_refuses(Path("/dev/zero"), "not a regular file (a character device)")


# -------------------------------------------------------------------------------- secret files

_SECRET_AT = """\
agent:
  id: line3
sinks:
  mqtt:
    host: broker.plant.local
    username: line3
    password: ${{file:{target}}}
    tls: {{ca_file: /etc/edge-agent/mqtt-ca.pem}}
"""


def test_secret_file_is_a_fifo_cli(tmp_path: Path) -> None:
    fifo = tmp_path / "mqtt_password"
    os.mkfifo(fifo)
    path = _write(tmp_path, _SECRET_AT.format(target=fifo))
    _assert_cli_refuses(
        path, f"error: {path}:7: sinks.mqtt.password: cannot read secret file {fifo}: "
    )


def test_secret_file_is_a_fifo(tmp_path: Path) -> None:
    # In this process too, with the load in a child so that a regression cannot hang the suite.
    fifo = tmp_path / "mqtt_password"
    os.mkfifo(fifo)
    path = _write(tmp_path, _SECRET_AT.format(target=fifo))
    code = (
        "import sys\nfrom edge_agent.config import load_config\nfrom edge_agent.errors import "
        "ConfigError\ntry:\n    load_config(sys.argv[1])\nexcept ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}:7: sinks.mqtt.password: cannot read secret file"), (
        done.stdout
    )
    assert "not a regular file (a FIFO)" in done.stdout


def test_secret_file_is_dev_zero(tmp_path: Path) -> None:
    path = _write(tmp_path, _SECRET_AT.format(target="/dev/zero"))
    _assert_cli_refuses(path, f"{path}:7: sinks.mqtt.password: cannot read secret file /dev/zero")


def test_secret_file_too_big(tmp_path: Path) -> None:
    big = tmp_path / "mqtt_password"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    path = _write(tmp_path, _SECRET_AT.format(target=big))
    issue = _one(path, 7, "at most 64 KiB", "sinks.mqtt.password")
    assert issue.message.startswith(f"cannot read secret file {big}: ")


def test_secret_file_is_a_directory(tmp_path: Path) -> None:
    path = _write(tmp_path, _SECRET_AT.format(target=tmp_path))
    _one(path, 7, "not a regular file (a directory)", "sinks.mqtt.password")


def test_values_from_outside_are_bounded(tmp_path: Path) -> None:
    # A 60 KiB file is a valid secret; read into the file twenty times it is 1.2 MiB of text.
    secret = tmp_path / "blob"
    secret.write_text("x" * 60_000, encoding="utf-8")
    text = "agent:\n  id: line3\nx: [" + ", ".join([f"'${{file:{secret}}}'"] * 20) + "]\n"
    # 1 MiB is crossed by the 18th: that is where the issue points.
    _one(_write(tmp_path, text), 3, "more than 1 MiB", "x[17]")


# ----------------------------------------------------------------------------------------- rules

_RULE = (
    _DEVICE
    + """\
machines:
  press1:
    ideal_cycle_time_s: 1
    state:
      running: {rule}
"""
)


def _rule_file(tmp_path: Path, rule: str) -> Path:
    return _write(tmp_path, _RULE.replace("{rule}", rule))


@pytest.mark.parametrize("name", ["values", "keys", "get", "items", "format", "copy"])
def test_tag_named_like_a_dict_method(name: str) -> None:
    # A tag read as `getattr(dict, name)` was the bound method, never equal to 1.
    rule = Expression(f"press1.{name} == 1 and press1.running")
    assert rule.refs == {f"press1.{name}", "press1.running"}
    assert rule.evaluate({"press1": {name: 1, "running": True}}) is True
    assert rule.evaluate({"press1": {name: 2, "running": True}}) is False


def test_tag_named_values_in_a_config(tmp_path: Path) -> None:
    config = load_config(_rule_file(tmp_path, "press1.values == 1"))
    rule = Expression(config.machines["press1"].state.running)
    assert rule.evaluate({"press1": {"values": 1, "running": False}}) is True


@pytest.mark.parametrize(
    "rule",
    ["press1._private == 1", "_press.running", "press1.__class__ == 1", "press1.running._x"],
)
def test_names_starting_with_underscore_are_refused(rule: str) -> None:
    with pytest.raises(ExpressionError):
        Expression(rule)


def test_underscore_name_refused_at_load(tmp_path: Path) -> None:
    text = (
        _rule_file(tmp_path, "press1._private == 1")
        .read_text()
        .replace("      values:", "      _private:")
    )
    issue = _one(_write(tmp_path, text), 14, "'_'", "machines.press1.state.running")
    assert "press1._private" in issue.message


def test_1000_term_rule(tmp_path: Path) -> None:
    # It used to validate, then raise RecursionError at every evaluation (state: unknown for ever).
    rule = " + ".join(["press1.values"] * 1000) + " > 0"
    issue = _one(_rule_file(tmp_path, rule), 14, "characters", "machines.press1.state.running")
    assert "at most 1000" in issue.message


def test_deep_rule_under_the_size_limit(tmp_path: Path) -> None:
    # 60 terms fit in 1000 characters, but nest 60 levels deep.
    rule = " + ".join(["press1.values"] * 60) + " > 0"
    assert len(rule) <= 1000
    _one(_rule_file(tmp_path, rule), 14, "nests", "machines.press1.state.running")


@pytest.mark.parametrize(
    "rule",
    [
        "-" * 900 + "press1.values",
        "not " * 200 + "press1.running",
        "(" * 300 + "press1.values" + ")" * 300 + " == 1",
    ],
    ids=["unary_minus", "not", "parentheses"],
)
def test_deep_rules_are_refused(rule: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=r"nests|parenthes"):
        Expression(rule)
    assert time.monotonic() - started < SECONDS


def test_rule_at_the_limits_evaluates() -> None:
    # As long as it loads, it evaluates: no RecursionError at run time.
    rule = Expression(" + ".join(["press1.values"] * 28) + " == 28")
    assert rule.evaluate({"press1": {"values": 1}}) is True
    wide = Expression(" or ".join(["press1.values == 2"] * 40))
    assert wide.evaluate({"press1": {"values": 2}}) is True


# ---------------------------------------------------------------------------------------- secrets

_SECRETS = """\
agent:
  id: line3
devices:
  press3:
    driver: opcua
    url: opc.tcp://192.168.10.30:4840
    username: edge
    password: {opcua}
    tags:
      running: {{node: "ns=2;s=Running"}}
sinks:
  mqtt:
    host: broker.plant.local
    port: 8883
    username: line3
    password: {mqtt}
    tls: {{ca_file: /etc/edge-agent/mqtt-ca.pem}}
  influxdb:
    url: https://influx.plant.local:8086
    token: {token}
"""


def _secrets(opcua: str = "pw-opcua-1", mqtt: str = "pw-mqtt-1", token: str = "tok-1") -> str:
    return _SECRETS.format(opcua=opcua, mqtt=mqtt, token=token)


@pytest.mark.parametrize(
    ("field", "line", "dotted"),
    [
        ("mqtt", 16, "sinks.mqtt.password"),
        ("token", 20, "sinks.influxdb.token"),
        ("opcua", 8, "devices.press3.password"),
    ],
)
@pytest.mark.parametrize("value", ["12345987", "4711.25", "0x1F2E3D4C", "true"])
def test_secret_of_any_yaml_type_is_redacted(
    tmp_path: Path, field: str, line: int, dotted: str, value: str
) -> None:
    path = _write(tmp_path, _secrets(**{field: value}))
    issues = _issues(path)
    at = [i for i in issues if i.path == dotted]
    assert at and at[0].line == line, "\n".join(map(str, issues))
    shown = str(ConfigError(issues))
    for text in (value, "12345987", "4711.25", "523124044"):  # 0x1F2E3D4C read as a number
        assert text not in shown, shown


def test_numeric_secret_is_not_echoed_elsewhere(tmp_path: Path) -> None:
    # The same digits as a wrong value of another key: the message elsewhere hides them too.
    text = _secrets(mqtt="80123").replace("    port: 8883\n", "    port: 80123\n")
    shown = str(ConfigError(_issues(_write(tmp_path, text))))
    assert "80123" not in shown, shown


@pytest.mark.parametrize(
    ("field", "line", "dotted"),
    [
        ("mqtt", 16, "sinks.mqtt.password"),
        ("token", 20, "sinks.influxdb.token"),
        ("opcua", 8, "devices.press3.password"),
    ],
)
def test_change_me_placeholder_is_refused(
    tmp_path: Path, field: str, line: int, dotted: str
) -> None:
    issue = _one(_write(tmp_path, _secrets(**{field: "change-me"})), line, "placeholder", dotted)
    assert "change-me" in issue.message


def test_change_me_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_PASSWORD_XYZ", "change-me")
    path = _write(tmp_path, _secrets(mqtt="${MQTT_PASSWORD_XYZ}"))
    issue = _one(path, 16, "placeholder", "sinks.mqtt.password")
    assert "'change-me'" in issue.message


def _env_example() -> dict[str, str]:
    values = {}
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            name, _, value = raw.partition("=")
            values[name.strip()] = value.strip()
    return values


_DEPLOYED = """\
agent:
  id: press1
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      running: {table: coil, address: 0, type: bool}
sinks:
  mqtt:
    host: ${MQTT_HOST}
    port: ${MQTT_PORT}
    username: ${MQTT_USERNAME}
    password: ${MQTT_PASSWORD}
    tls: {ca_file: "${MQTT_CA_FILE}"}
  influxdb:
    url: ${INFLUX_URL}
    token: ${INFLUX_TOKEN}
    org: ${INFLUX_ORG}
    bucket: ${INFLUX_BUCKET}
"""


def test_env_example_placeholders_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env_example()
    assert env["MQTT_PORT"] == "8883" and env["INFLUX_URL"].startswith("https://")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    issues = _issues(_write(tmp_path, _DEPLOYED))
    assert {(i.line, i.path) for i in issues} == {
        (14, "sinks.mqtt.password"),
        (18, "sinks.influxdb.token"),
    }
    # With the placeholders replaced, the example is a TLS setup: no plaintext warning.
    monkeypatch.setenv("MQTT_PASSWORD", "s3cret-from-the-vault")
    monkeypatch.setenv("INFLUX_TOKEN", "t0ken-from-the-vault")
    config, warnings = load_config_with_warnings(tmp_path / "agent.yaml")
    assert warnings == []
    assert config.sinks["mqtt"] is not None and config.sinks["mqtt"].port == 8883


def test_env_example_tells_to_replace_the_placeholders() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "change-me" in text
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "replace" in comments.lower()


# ------------------------------------------------------------------------------ plaintext warnings

_PLAIN = """\
agent:
  id: line3
devices:
  press3:
    driver: opcua
    url: opc.tcp://192.168.10.30:4840
    security: {security}
    username: edge
    password: {opcua}
    tags:
      running: {{node: "ns=2;s=Running"}}
sinks:
  mqtt:
    host: broker.plant.local
    port: {port}
    username: line3
    password: {mqtt}
{tls}  influxdb:
    url: {url}
    token: {token}
"""

_SAFE = {
    "security": "{policy: Basic256Sha256, mode: SignAndEncrypt}",
    "opcua": "pw-opcua-1",
    "port": "8883",
    "mqtt": "pw-mqtt-1",
    "tls": "    tls: {ca_file: /etc/edge-agent/mqtt-ca.pem}\n",
    "url": "https://influx.plant.local:8086",
    "token": "tok-1",
}


def _warnings(tmp_path: Path, **changes: str) -> list[tuple[int | None, str, str]]:
    path = _write(tmp_path, _PLAIN.format(**{**_SAFE, **changes}))
    started = time.monotonic()
    _, warnings = load_config_with_warnings(path)
    assert time.monotonic() - started < SECONDS
    for warning in warnings:
        assert warning.file == str(path)
    return [(w.line, w.path, w.message) for w in warnings]


def test_no_warning_when_everything_is_encrypted(tmp_path: Path) -> None:
    assert _warnings(tmp_path) == []


@pytest.mark.parametrize(
    ("changes", "line", "dotted", "text"),
    [
        ({"tls": "", "port": "1883"}, 17, "sinks.mqtt.password", "without TLS"),
        ({"url": "http://influx.plant.local:8086"}, 20, "sinks.influxdb.url", "http://"),
        ({"url": "HTTP://influx.plant.local:8086"}, 20, "sinks.influxdb.url", "http://"),
        ({"security": "none"}, 7, "devices.press3.security", "security none"),
        ({"security": "{policy: none}"}, 7, "devices.press3.security", "security none"),
        ({"security": "{mode: Sign}"}, 7, "devices.press3.security.mode", "Sign"),
    ],
    ids=[
        "mqtt_no_tls",
        "influx_http",
        "influx_http_upper",
        "opcua_none",
        "opcua_policy_none",
        "opcua_sign",
    ],
)
def test_plaintext_warning(
    tmp_path: Path, changes: dict[str, str], line: int, dotted: str, text: str
) -> None:
    warnings = _warnings(tmp_path, **changes)
    assert len(warnings) == 1, warnings
    assert warnings[0][:2] == (line, dotted)
    assert text in warnings[0][2]
    assert "pw-" not in warnings[0][2] and "tok-1" not in warnings[0][2]


@pytest.mark.parametrize(
    "changes",
    [
        {"tls": "", "port": "1883", "mqtt": '""'},
        {"url": "http://influx.plant.local:8086", "token": '""'},
        {"security": "none", "opcua": "null"},
    ],
    ids=["mqtt_without_password", "influx_without_token", "opcua_without_password"],
)
def test_no_warning_without_a_secret(tmp_path: Path, changes: dict[str, str]) -> None:
    assert _warnings(tmp_path, **changes) == []


def test_no_warning_for_a_disabled_sink(tmp_path: Path) -> None:
    tls = "    enabled: false\n"
    url = "http://influx.plant.local:8086\n    enabled: false"
    assert _warnings(tmp_path, tls=tls, port="1883", url=url) == []


def test_load_config_logs_the_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # `edge-agent run` loads with load_config: the warning reaches its log (standard error).
    path = _write(tmp_path, _PLAIN.format(**{**_SAFE, "tls": "", "port": "1883"}))
    with caplog.at_level(logging.WARNING, logger="edge_agent.config"):
        load_config(path)
    [record] = [r for r in caplog.records if r.name == "edge_agent.config"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"{path}:17: sinks.mqtt.password: ")
    assert "pw-mqtt-1" not in record.getMessage()


def test_cli_validate_prints_warnings(tmp_path: Path) -> None:
    path = _write(tmp_path, _PLAIN.format(**{**_SAFE, "url": "http://influx.plant.local:8086"}))
    done = _cli("validate", str(path))
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith(f"warning: {path}:20: sinks.influxdb.url: ")
    assert "tok-1" not in done.stderr


def test_cli_validate_without_warnings_is_quiet(tmp_path: Path) -> None:
    done = _cli("validate", str(_write(tmp_path, _PLAIN.format(**_SAFE))))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_influx_v1_password_over_http_is_warned_about(tmp_path: Path) -> None:
    v1 = "null\n    api: v1\n    database: plant\n    username: line3\n    password: pw-influx-1"
    warnings = _warnings(tmp_path, url="http://influx.plant.local:8086", token=v1)
    assert [(line, dotted) for line, dotted, _ in warnings] == [(20, "sinks.influxdb.url")]
    assert "the password goes to InfluxDB over http://" in warnings[0][2]
    assert "pw-" not in warnings[0][2]
    assert _warnings(tmp_path, url="https://influx.plant.local:8086", token=v1) == []
