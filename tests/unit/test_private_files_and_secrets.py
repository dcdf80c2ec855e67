"""Private files (0600 in 0700 folders), secrets scrubbed from run-time texts, one-line logs.

File modes are checked under a permissive umask (0o022, as on a developer's shell), set by the
test and restored after: what the agent makes must be private whatever umask it inherits.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from drivers.opcua.config import OpcUaDeviceConfig
from drivers.opcua.driver import OpcUaDriver
from drivers.opcua.pki import own_certificate, trust
from edge_agent.cli.logs import setup_logging
from edge_agent.config import load_config
from edge_agent.outbox import Outbox
from edge_agent.private_files import private_dir, private_file, write_private
from edge_agent.records import Record, StoredRecord
from edge_agent.redaction import (
    SafeLogFormatter,
    remember_secrets,
    scrub,
    scrub_tree,
    without_credentials,
)
from edge_agent.sinks.influxdb.config import InfluxSinkConfig
from edge_agent.sinks.influxdb.sink import InfluxSink
from edge_agent.sinks.mqtt.config import MqttSinkConfig
from edge_agent.sinks.mqtt.layout import messages_for
from edge_agent.sinks.mqtt.sink import MqttSink


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------ file modes


async def test_a_new_buffer_is_private_and_so_are_the_folders_it_makes(
    tmp_path: Path, open_umask: None
) -> None:
    tmp_path.chmod(0o755)  # a folder that was there: someone else's choice
    path = tmp_path / "state" / "edge" / "outbox.db"
    outbox = Outbox(path)
    await outbox.open()
    try:
        outbox.append(Record("values", "plc", 1, {"device": "plc", "values": {"a": 1.0}}))
        assert await outbox.flush()
        files = [path, f"{path}-wal", f"{path}-shm", f"{path}.lock"]
        assert {str(f): oct(mode(f)) for f in files} == {str(f): "0o600" for f in files}
        assert oct(mode(tmp_path / "state")) == "0o700"
        assert oct(mode(tmp_path / "state" / "edge")) == "0o700"
        assert oct(mode(tmp_path)) == "0o755"  # never changed: the agent did not make it
    finally:
        await outbox.close()


async def test_buffer_files_of_an_earlier_version_are_narrowed(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path, isolation_level=None)  # as the agent made it before: 0644
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    lock = tmp_path / "outbox.db.lock"
    lock.write_text("")
    assert oct(mode(path)) == "0o644" and oct(mode(lock)) == "0o644"
    outbox = Outbox(path)
    await outbox.open()
    try:
        for f in (path, f"{path}-wal", f"{path}-shm", lock):
            assert oct(mode(f)) == "0o600", f
    finally:
        await outbox.close()
        db.close()


async def test_a_damaged_buffer_moved_aside_stays_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"not a database, but records someone may read" * 100)
    outbox = Outbox(path)
    await outbox.open()
    try:
        assert outbox.moved_aside is not None
        assert oct(mode(outbox.moved_aside)) == "0o600"
        assert oct(mode(path)) == "0o600"  # the fresh one
    finally:
        await outbox.close()


async def test_the_opcua_key_and_trust_list_are_private(tmp_path: Path, open_umask: None) -> None:
    pki = tmp_path / "pki"
    own = await own_certificate(pki, "press-hall-1")
    trusted = trust(pki, own.cert.read_bytes())
    assert oct(mode(own.key)) == "0o600"
    assert oct(mode(own.cert)) == "0o600"
    assert oct(mode(trusted)) == "0o600"
    for folder in (pki, pki / "own", pki / "trusted"):
        assert oct(mode(folder)) == "0o700", folder
    assert [p.name for p in (pki / "trusted").iterdir()] == [trusted.name]  # no temp file left


async def test_a_pki_of_an_earlier_version_is_narrowed_but_not_its_configured_folder(
    tmp_path: Path, open_umask: None
) -> None:
    pki = tmp_path / "pki"
    (pki / "own").mkdir(parents=True)  # as made before: 0755, key 0644
    key, cert = pki / "own" / "key.pem", pki / "own" / "cert.der"
    uri = "urn:edge-agent:press-hall-1"
    await setup_self_signed_certificate(
        key, cert, uri, "h", [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "x"}
    )
    assert oct(mode(key)) == "0o644"
    before = key.read_bytes()
    await own_certificate(pki, "press-hall-1")
    assert key.read_bytes() == before  # the same key, only narrowed
    assert oct(mode(key)) == "0o600"
    assert oct(mode(pki / "own")) == "0o700"  # a name of the agent's own layout
    assert oct(mode(pki)) == "0o755"  # pki_path is named by a person: left as it is


async def test_a_missing_key_beside_an_old_certificate_gets_a_new_certificate(
    tmp_path: Path, open_umask: None
) -> None:
    pki = tmp_path / "pki"
    first = await own_certificate(pki, "a1")
    old_cert = first.cert.read_bytes()
    first.key.unlink()
    second = await own_certificate(pki, "a1")
    assert second.cert.read_bytes() != old_cert  # a certificate of the lost key is worthless
    assert oct(mode(second.key)) == "0o600"


def test_write_private_replaces_at_once_with_mode_0600(tmp_path: Path, open_umask: None) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    target = folder / "users.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, b'{"users": {}}')
    assert target.read_bytes() == b'{"users": {}}'
    assert oct(mode(target)) == "0o600"
    assert [p.name for p in folder.iterdir()] == ["users.json"]
    assert oct(mode(tmp_path / "a")) == "0o700"
    assert oct(mode(private_file(folder / "empty"))) == "0o600"


def test_private_dir_leaves_an_existing_folder_unless_it_is_the_agents(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_dir(shared)
    assert oct(mode(shared)) == "0o755"
    private_dir(shared, ours=True)
    assert oct(mode(shared)) == "0o700"


# ------------------------------------------------------------------------------ secrets


def test_the_loaded_configuration_s_secrets_are_scrubbed(tmp_path: Path) -> None:
    token_file = tmp_path / "influx-token"
    token_file.write_text("tok-file-8d1f0c2b\n")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "agent: {id: a1, http: {enabled: false}}\n"
        "devices:\n"
        "  plc: {driver: modbus, host: 127.0.0.1, tags: {x: {table: holding, address: 0}}}\n"
        "sinks:\n"
        "  mqtt: {host: broker, username: edge, password: literal-pass-5e77}\n"
        f"  influxdb: {{url: 'http://reader:url-pass-19ab@db:8086', token: '${{file:{token_file}}}'}}\n"
    )
    load_config(config)
    text = (
        "401: Authorization: Token tok-file-8d1f0c2b; mqtt literal-pass-5e77; "
        "basic cmVhZGVyOnVybC1wYXNzLTE5YWI=; plain url-pass-19ab"
    )
    shown = scrub(text)
    for secret in ("tok-file-8d1f0c2b", "literal-pass-5e77", "url-pass-19ab", "cmVhZGVy"):
        assert secret not in shown
    assert shown.count("***") == 4


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("http://user:pa:ss@db:8086/api?x=1", "http://db:8086/api?x=1"),
        ("opc.tcp://operator:p%40ss@10.0.0.5:4840", "opc.tcp://10.0.0.5:4840"),
        ("mqtts://u:p@broker:8883", "mqtts://broker:8883"),
        ("user:secret@broker", "broker"),
        ("http://db:8086", "http://db:8086"),
        ("192.168.1.20", "192.168.1.20"),
    ],
)
def test_credentials_in_urls_are_never_shown(given: str, shown: str) -> None:
    assert without_credentials(given) == shown


def test_endpoints_show_no_credentials() -> None:
    influx = InfluxSink(InfluxSinkConfig(url="http://w:pw-1234@db:8086", bucket="b"), "a1")
    assert influx.endpoint == "http://db:8086 bucket b"
    mqtt = MqttSink(MqttSinkConfig(host="edge:pw-1234@broker"), "a1", "edge/a1")
    assert mqtt.endpoint == "broker:1883"
    opcua = OpcUaDeviceConfig.model_validate(
        {
            "driver": "opcua",
            "url": "opc.tcp://op:pw-1234@10.0.0.5:4840",
            "tags": {"t": {"node": "ns=2;i=1"}},
        }
    )
    driver = OpcUaDriver("press", opcua, agent_id="a1", pki=Path("unused"))
    assert driver.endpoint == "opc.tcp://10.0.0.5:4840"


def test_a_device_error_with_a_secret_leaves_by_mqtt_as_stars() -> None:
    remember_secrets(["echoed-secret-77f1"])
    body = {"device": "plc", "state": "down", "endpoint": "x", "error": "echo: echoed-secret-77f1"}
    record = StoredRecord(5, 1_700_000_000_000_000_000, "link", "plc", json.dumps(body))
    [(topic, payload, retained)] = messages_for(record, "edge/a1", MqttSinkConfig())
    assert topic == "edge/a1/devices/plc/link" and retained
    assert json.loads(payload)["error"] == "echo: ***"


def test_scrub_tree_reaches_every_string() -> None:
    remember_secrets(["tree-secret-0a9c"])
    tree = {"a": ["x tree-secret-0a9c", {"b": ("http://u:p@h", 1.5, None, True)}]}
    assert scrub_tree(tree) == {"a": ["x ***", {"b": ("http://h", 1.5, None, True)}]}


# ------------------------------------------------------------------------------ log lines


def formatted(record: logging.LogRecord) -> str:
    return SafeLogFormatter("%(levelname)s %(name)s: %(message)s").format(record)


def test_a_log_line_with_newlines_and_escapes_in_an_argument_stays_one_escaped_line() -> None:
    record = logging.LogRecord(
        "edge_agent.web",
        logging.WARNING,
        __file__,
        1,
        "login refused for %s",
        ("admin\n2024-01-01 INFO edge_agent: forged\x1b[31m red\x7f\x00",),
        None,
    )
    line = formatted(record)
    assert "\n" not in line and "\x1b" not in line and "\x7f" not in line and "\x00" not in line
    assert line == (
        "WARNING edge_agent.web: login refused for "
        "admin\\n2024-01-01 INFO edge_agent: forged\\x1b[31m red\\x7f\\x00"
    )


def test_a_traceback_stays_on_the_same_line_and_is_scrubbed() -> None:
    remember_secrets(["trace-secret-51d0"])
    try:
        raise ValueError("server said trace-secret-51d0")
    except ValueError:
        record = logging.LogRecord(
            "edge_agent", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = formatted(record)
    assert "\n" not in line and "Traceback" in line
    assert "trace-secret-51d0" not in line and "server said ***" in line


def test_a_sink_error_with_a_secret_is_logged_with_stars() -> None:
    remember_secrets(["log-secret-c3e2"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeLogFormatter("%(message)s"))
    log = logging.getLogger("edge_agent.delivery")
    log.addHandler(handler)
    try:
        log.error("%s: %s; retrying", "influxdb", "InfluxDB answered 401: Token log-secret-c3e2")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "influxdb: InfluxDB answered 401: Token ***; retrying\n"


@pytest.fixture
def logging_restored() -> Iterator[None]:
    names = ["asyncua", "asyncua.client.client", "pymodbus", "apscheduler.executors"]
    names.append("apscheduler.scheduler")
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    root = logging.getLogger()
    root_saved = (root.level, list(root.handlers))
    try:
        yield
    finally:
        for name, (level, filters) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.filters[:] = filters
        root.setLevel(root_saved[0])
        root.handlers[:] = root_saved[1]


def test_asyncua_s_plain_text_password_warning_passes_and_its_other_chatter_does_not(
    logging_restored: None, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("INFO")
    # The real asyncua code path: a server whose user token policy does not encrypt, a channel
    # without security.
    client = Client("opc.tcp://127.0.0.1:4840")
    client._add_user_auth(ua.ActivateSessionParameters(), "operator", "pw")
    logging.getLogger("asyncua.client.client").warning("Secure channel renewed late")
    logging.getLogger("asyncua.client.ua_client").warning("Some other warning")
    logging.getLogger("asyncua.client.client").info("Sending plain-text password")
    shown = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert shown == [("asyncua.client.client", "WARNING", "Sending plain-text password")]


def test_what_root_makes_in_the_agents_folder_stays_readable_by_the_agent(tmp_path: Path) -> None:
    # `edge-agent opcua trust` run by an administrator, in the folder of the agent's user. The
    # tests run as root (make test installs system packages); as another user this one fails.
    assert os.geteuid() == 0, "run the tests as root (as make test and CI do)"
    agent_folder = tmp_path / "agent"
    agent_folder.mkdir()
    os.chown(agent_folder, 4321, 4321)
    trusted = private_dir(agent_folder / "pki" / "trusted", ours=True)
    made = [agent_folder / "pki", trusted, write_private(trusted / "a.der", b"x")]
    made.append(private_file(agent_folder / "outbox.db"))
    assert [(p.stat().st_uid, p.stat().st_gid) for p in made] == [(4321, 4321)] * 4
