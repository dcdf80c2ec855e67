"""Configuration loading: a corpus of broken files, `${...}` substitution, secrets and the CLI.

The corpus is tests/cases/config_errors/*.yaml. Each file is one realistic mistake and starts with

    # expect-line: 12
    # expect-path: devices.press1.tags.temp.type      (empty for a file-level / YAML syntax error)
    # expect-message: one of 'bool', 'int16'           (a substring the message must contain)

`load_config` must raise ConfigError, and among its issues the first one whose path is exactly
expect-path must be on expect-line with a message containing expect-message. Matching by path
rather than by position lets a case check the second copy of a mistake, e.g. a key that a merge
(`<<: *press`) brings into another device. Other issues may be reported too, but every issue must
have a line number and none may carry traceback text. Environment variables that a case
references are unset while it loads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.config import json_schema, load_config
from edge_agent.errors import ConfigError, ConfigIssue

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT / "tests" / "cases" / "config_errors"
DEMO = ROOT / "configs" / "demo.yaml"

_HEADER = re.compile(r"#\s*expect-(line|path|message):[ \t]*(.*?)[ \t]*$")
_VARIABLE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_TRACEBACK_SIGNS = ("Traceback", 'File "', "most recent call last", "errors.pydantic.dev")


@dataclass(frozen=True)
class Case:
    path: Path
    line: int
    dotted: str
    message: str
    variables: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.stem


def _read_case(path: Path) -> Case:
    # Bytes, not text: one case is deliberately not UTF-8; its header is plain ASCII all the same.
    text = path.read_bytes().decode("utf-8", errors="replace")
    header: dict[str, str] = {}
    for raw in text.splitlines()[:3]:
        match = _HEADER.fullmatch(raw)
        if match is None:
            raise ValueError(f"{path}: the first three lines must be the expect-* header: {raw!r}")
        header[match.group(1)] = match.group(2)
    if set(header) != {"line", "path", "message"} or not header["message"]:
        raise ValueError(f"{path}: expect-line, expect-path and expect-message are all needed")
    return Case(
        path=path,
        line=int(header["line"]),
        dotted=header["path"],
        message=header["message"],
        variables=tuple(sorted(set(_VARIABLE_REF.findall(text)))),
    )


CASES = [_read_case(p) for p in sorted(CASES_DIR.glob("*.yaml"))]


def _listing(issues: list[ConfigIssue]) -> str:
    return "\n".join(f"  line {i.line}: {i.path or '(file)'}: {i.message}" for i in issues)


def _assert_no_traceback(issues: list[ConfigIssue]) -> None:
    for issue in issues:
        text = str(issue)
        for sign in _TRACEBACK_SIGNS:
            assert sign not in text, f"traceback text {sign!r} in: {text}"


def _load_issues(path: Path) -> list[ConfigIssue]:
    """The issues of a file that must not load; any other exception is a failure, not an error."""
    try:
        load_config(path)
    except ConfigError as exc:
        return exc.issues
    except Exception as exc:
        pytest.fail(f"load_config raised {type(exc).__name__} instead of ConfigError: {exc}")
    pytest.fail(f"{path.name} loaded without an error")


# ------------------------------------------------------------------------------------- corpus


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        lines = case.path.read_bytes().count(b"\n") + 1
        assert 1 <= case.line <= lines, f"{case.name}: expect-line {case.line} is not in the file"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_config_is_reported(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in case.variables:
        monkeypatch.delenv(name, raising=False)
    issues = _load_issues(case.path)
    assert issues, "ConfigError without any issue"
    _assert_no_traceback(issues)
    listing = _listing(issues)
    for issue in issues:
        assert issue.file == str(case.path)
        assert issue.line is not None, f"an issue without a line number:\n{listing}"
    at_path = [issue for issue in issues if issue.path == case.dotted]
    assert at_path, f"no issue at path {case.dotted!r}; reported:\n{listing}"
    issue = at_path[0]
    assert issue.line == case.line, (
        f"{case.dotted or '(file)'} reported on line {issue.line}, expected {case.line}:\n{listing}"
    )
    assert case.message in issue.message, f"message lacks {case.message!r}:\n{listing}"


# ----------------------------------------------------------------------------- valid configs

_DEMO_VARIABLES = (
    "EDGE_AGENT_LANGUAGE",
    "EDGE_AGENT_HTTP_PORT",
    "MQTT_HOST",
    "MQTT_PORT",
    "MQTT_USERNAME",
    "MQTT_PASSWORD",
    "INFLUX_URL",
    "INFLUX_TOKEN",
    "INFLUX_ORG",
    "INFLUX_BUCKET",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _DEMO_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_demo_config_loads(clean_env: pytest.MonkeyPatch) -> None:
    config = load_config(DEMO)
    assert config.agent.id == "demo"
    assert config.agent.language == "en"
    assert config.agent.http.port == 8080
    assert set(config.devices) == {"press1", "press2", "press3"}
    assert config.devices["press3"].driver == "opcua"
    press1, press2 = config.devices["press1"], config.devices["press2"]
    # press2 is press1's block (`<<: *press`) with its own port.
    assert (press1.port, press2.port) == (5020, 5021)
    assert press2.tags == press1.tags
    assert press1.tags["spindle_temp_c"].type == "float32"
    assert set(config.machines) == {"press1", "press2", "press3"}
    assert config.machines["press2"].state.running == "press2.running"
    assert config.machines["press2"].reasons["1"].text == "Die jam"
    assert config.machines["press2"].calendar == "plant"
    assert config.sinks["mqtt"] is not None and not config.sinks["mqtt"].enabled
    assert config.sinks["influxdb"] is not None and not config.sinks["influxdb"].enabled
    assert config.sinks["mqtt"].password is not None
    assert config.sinks["mqtt"].password.get_secret_value() == ""


def test_demo_config_takes_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MQTT_HOST", "broker.plant.local")
    clean_env.setenv("MQTT_PORT", "8883")
    clean_env.setenv("EDGE_AGENT_HTTP_PORT", "9090")
    config = load_config(DEMO)
    assert config.sinks["mqtt"] is not None
    assert config.sinks["mqtt"].enabled is True
    assert (config.sinks["mqtt"].host, config.sinks["mqtt"].port) == ("broker.plant.local", 8883)
    assert config.agent.http.port == 9090


# ------------------------------------------------------------------------------ substitution

_BASE = """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: {host}
    port: {port}
    tags:
      running: {{table: coil, address: 0, type: bool}}
sinks:
  mqtt:
    enabled: {enabled}
    host: broker.plant.local
    password: {password}
  influxdb:
    url: {url}
    org: {org}
"""


def _write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _config_text(**fields: str) -> str:
    values = {
        "host": "192.168.10.21",
        "port": "502",
        "enabled": "true",
        "password": "pw",
        "url": "http://localhost:8086",
        "org": "plant",
    }
    values.update(fields)
    return _BASE.format(**values)


def test_plain_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLC_HOST", "10.0.0.5")
    monkeypatch.setenv("PLC_PORT", "5020")
    config = load_config(_write(tmp_path, _config_text(host="${PLC_HOST}", port="${PLC_PORT}")))
    assert config.devices["press1"].host == "10.0.0.5"
    assert config.devices["press1"].port == 5020


def test_variables_inside_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLUX_HOST", "influx.plant.local")
    monkeypatch.setenv("INFLUX_PORT", "8087")
    path = _write(tmp_path, _config_text(url="https://${INFLUX_HOST}:${INFLUX_PORT}/"))
    config = load_config(path)
    assert config.sinks["influxdb"] is not None
    assert config.sinks["influxdb"].url == "https://influx.plant.local:8087/"


def test_unset_variable_is_an_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLC_HOST_UNSET_XYZ", raising=False)
    path = _write(tmp_path, _config_text(host="${PLC_HOST_UNSET_XYZ}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (6, "devices.press1.host")
    assert issue.message == "environment variable PLC_HOST_UNSET_XYZ is not set"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "http://localhost:8086"), ("", "http://localhost:8086"), ("http://i:1", "http://i:1")],
    ids=["unset", "empty", "set"],
)
def test_default_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    # The default may itself hold ':' and '/'; like the shell's `:-`, an empty value takes it too.
    if value is None:
        monkeypatch.delenv("INFLUX_URL_XYZ", raising=False)
    else:
        monkeypatch.setenv("INFLUX_URL_XYZ", value)
    config = load_config(
        _write(tmp_path, _config_text(url="${INFLUX_URL_XYZ:-http://localhost:8086}"))
    )
    assert config.sinks["influxdb"] is not None
    assert config.sinks["influxdb"].url == expected


def test_default_form_empty_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFLUX_ORG_XYZ", raising=False)
    config = load_config(_write(tmp_path, _config_text(org="${INFLUX_ORG_XYZ:-}")))
    assert config.sinks["influxdb"] is not None
    assert config.sinks["influxdb"].org == ""


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, False), ("", False), ("broker.plant.local", True)],
    ids=["unset", "empty", "set"],
)
def test_alternative_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, enabled: bool
) -> None:
    # `enabled: ${MQTT_HOST:+true}` switches a sink on only where its host is configured.
    if value is None:
        monkeypatch.delenv("MQTT_HOST_XYZ", raising=False)
    else:
        monkeypatch.setenv("MQTT_HOST_XYZ", value)
    config = load_config(_write(tmp_path, _config_text(enabled="${MQTT_HOST_XYZ:+true}")))
    assert config.sinks["mqtt"] is not None
    assert config.sinks["mqtt"].enabled is enabled


def test_required_form_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLC_HOST_XYZ", "10.0.0.9")
    config = load_config(
        _write(tmp_path, _config_text(host="${PLC_HOST_XYZ:?set the PLC address}"))
    )
    assert config.devices["press1"].host == "10.0.0.9"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_required_form_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("PLC_HOST_XYZ", raising=False)
    else:
        monkeypatch.setenv("PLC_HOST_XYZ", value)
    path = _write(tmp_path, _config_text(host="${PLC_HOST_XYZ:?set the PLC address}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (6, "devices.press1.host")
    assert (
        issue.message
        == "environment variable PLC_HOST_XYZ is not set or empty: set the PLC address"
    )


def test_escaped_dollar_brace_is_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_A_VAR_XYZ", raising=False)
    path = _write(tmp_path, _config_text(org='"$${NOT_A_VAR_XYZ}"', password="pa$$word"))
    config = load_config(path)
    assert config.sinks["influxdb"] is not None and config.sinks["mqtt"] is not None
    assert config.sinks["influxdb"].org == "${NOT_A_VAR_XYZ}"
    assert config.sinks["mqtt"].password is not None
    # `$$` without a brace is left alone.
    assert config.sinks["mqtt"].password.get_secret_value() == "pa$$word"


def test_substituted_values_are_not_expanded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFLUX_ORG_XYZ", "${HOME}")
    config = load_config(_write(tmp_path, _config_text(org="${INFLUX_ORG_XYZ}")))
    assert config.sinks["influxdb"] is not None
    assert config.sinks["influxdb"].org == "${HOME}"


def test_malformed_reference(tmp_path: Path) -> None:
    path = _write(tmp_path, _config_text(host="${ PLC_HOST }"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (6, "devices.press1.host")
    assert "is not a variable reference" in issue.message


# ----------------------------------------------------------------------------------- secrets

SECRET = "Zx9_kq3LmP0wT7vB"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "mqtt_password"
    path.parent.mkdir()
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


def test_secret_from_file(tmp_path: Path, secret_file: Path) -> None:
    config = load_config(_write(tmp_path, _config_text(password=f"${{file:{secret_file}}}")))
    assert config.sinks["mqtt"] is not None and config.sinks["mqtt"].password is not None
    # The trailing newline of the file is not part of the secret.
    assert config.sinks["mqtt"].password.get_secret_value() == SECRET
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


def test_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_secret"
    path = _write(tmp_path, _config_text(password=f"${{file:{missing}}}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [issue] = caught.value.issues
    assert (issue.line, issue.path) == (14, "sinks.mqtt.password")
    assert f"cannot read secret file {missing}" in issue.message


def test_secret_file_that_is_not_text(tmp_path: Path) -> None:
    # A binary file (a DER key, a keytab) given where a text secret is expected.
    binary = tmp_path / "client.key.der"
    binary.write_bytes(b"\x30\x82\x04\xa4\x02\x01\x00\xff\xfe")
    path = _write(tmp_path, _config_text(password=f"${{file:{binary}}}"))
    issues = _load_issues(path)
    _assert_no_traceback(issues)
    assert [(i.line, i.path) for i in issues] == [(14, "sinks.mqtt.password")]


# Where a secret file might be referenced by mistake (a copied line): in each, the value is invalid.
_LEAK_PROBES = {
    "port": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    port: @S@
    tags:
      running: {table: coil, address: 0, type: bool}
""",
    "port_inside_text": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    port: "50@S@"
    tags:
      running: {table: coil, address: 0, type: bool}
""",
    "tag_type": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      temp:
        table: input
        address: 0
        type: @S@
""",
    "mqtt_qos": """\
agent:
  id: line3
sinks:
  mqtt:
    host: broker.plant.local
    qos: @S@
""",
    "alarm_tag": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      temp: {table: input, address: 0, type: float32}
alarms:
  - id: temp_high
    type: limit
    tag: @S@
    high: 70
""",
    "timezone": """\
agent:
  id: line3
calendars:
  main:
    timezone: @S@
    shifts:
      - {name: day, start: "08:00", end: "20:00"}
""",
    "machine_calendar": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      running: {table: coil, address: 0, type: bool}
machines:
  press1:
    ideal_cycle_time_s: 2
    calendar: @S@
    state:
      running: press1.running
""",
    "state_rule": """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    tags:
      running: {table: coil, address: 0, type: bool}
machines:
  press1:
    ideal_cycle_time_s: 2
    state:
      running: @S@
""",
}


@pytest.mark.parametrize("probe", sorted(_LEAK_PROBES))
def test_secret_never_appears_in_errors(tmp_path: Path, secret_file: Path, probe: str) -> None:
    text = _LEAK_PROBES[probe].replace("@S@", f"${{file:{secret_file}}}")
    path = _write(tmp_path, text)
    issues = _load_issues(path)
    _assert_no_traceback(issues)
    where = next(n for n, line in enumerate(text.splitlines(), 1) if "${file:" in line)
    assert any(issue.line == where for issue in issues), _listing(issues)
    for issue in issues:
        assert SECRET not in str(issue), f"the secret leaks: {issue}"
    assert SECRET not in str(ConfigError(issues))


# ------------------------------------------------------------------- odd files, not the corpus


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    [issue] = caught.value.issues
    assert issue.line is None
    assert "cannot read the file" in issue.message


def test_top_level_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, "- agent: {id: line3}\n"))
    [issue] = caught.value.issues
    assert issue.line == 1
    assert "top level must be a mapping" in issue.message


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    # Windows editors save "UTF-8 with BOM".
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + b"agent:\n  id: line3\n")
    assert load_config(path).agent.id == "line3"


def test_every_issue_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
agent:
  id: line3
devices:
  press1:
    driver: modbus
    host: 192.168.10.21
    port: 70000
    unit_id: 300
    tags:
      temp: {table: input, address: 0, type: float23}
"""
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    found = {(i.line, i.path) for i in caught.value.issues}
    assert found == {
        (7, "devices.press1.port"),
        (8, "devices.press1.unit_id"),
        (10, "devices.press1.tags.temp.type"),
    }
    # The exception's text is one `file:line: path: message` line per issue.
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{tmp_path / 'agent.yaml'}:7: devices.press1.port: ")


# --------------------------------------------------------------------------------------- CLI


def _cli(*args: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_CLI_CASES = [
    "unknown_key_did_you_mean",
    "yaml_bad_indentation",
    "state_unknown_tag",
    "unset_environment_variable",
    "non_utf8_degree_sign",
]


@pytest.mark.parametrize("name", _CLI_CASES)
def test_cli_validate_broken_file(name: str) -> None:
    case = next(c for c in CASES if c.name == name)
    done = _cli("validate", str(case.path), unset=case.variables)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors, done.stderr
    # Each issue as `error: file:line: dotted.path: message`.
    for line in errors:
        assert re.match(rf"error: {re.escape(str(case.path))}:\d+: ", line), line
    assert "nothing was started" in done.stderr


def test_cli_validate_reports_line_and_path() -> None:
    case = next(c for c in CASES if c.name == "unknown_key_did_you_mean")
    done = _cli("validate", str(case.path))
    assert (
        f"error: {case.path}:11: devices.press1.poll_intervall_s: unknown key "
        "'poll_intervall_s'; did you mean 'poll_interval_s'?"
    ) in done.stderr.splitlines()


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    done = _cli("validate", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "cannot read the file" in done.stderr


def test_cli_validate_demo() -> None:
    done = _cli("validate", str(DEMO), unset=_DEMO_VARIABLES)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_cli_schema() -> None:
    done = _cli("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert {"agent", "devices", "machines", "calendars", "alarms", "sinks"} <= set(
        schema["properties"]
    )
    assert "agent" in schema.get("required", [])
    assert schema == json_schema()
