"""The offline archive: `make wheelhouse` builds it, `install.sh` installs it with the network cut.

The archives are built once per session by the Makefile target itself, for the running Python
(the lowest supported one in CI: requires-python is ">=3.11") and for 3.12, which is only
downloaded (binary wheels resolved for another interpreter). Each install runs under
`unshare --net`, a network namespace with nothing but a loopback that is down, so pip could not
reach an index even if it tried; install.sh also passes --no-index and reads no pip.conf. Without
network namespaces (not root, and no user namespaces) the installs still run with --no-index
alone, say so in a warning, and fail under CI, where the check must be the real one.

The installs go under `install.sh --root DIR` (no user, no chown, no systemctl), except one, as
root, that runs it as on a plant PC inside private mount and network namespaces where /etc is a
copy and /opt and /var/lib are empty folders: this machine is left as it was either way.
`pytest -s` prints how long the build and each install took.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "3.12" if RUNNING != "3.12" else "3.11"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
ARCH = os.uname().machine
# Values a plant would put into /etc/edge-agent/env in place of env.example's change-me.
FILLED_ENV = """\
MQTT_HOST=broker.plant.example
MQTT_PORT=8883
MQTT_USERNAME=line2-utilities
MQTT_PASSWORD="s3cret with space"
INFLUX_URL=https://influx.plant.example:8086
INFLUX_TOKEN=tok-123
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_name_version(wheel: str) -> tuple[str, str]:
    name, version = wheel.split("-")[:2]
    return _norm(name), version


def _cannot_here(why: str) -> None:
    """A part this machine cannot run: a failure in CI, where it must run (root, Debian's and
    pyenv's Pythons are there), a skip that says why on a developer's PC."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run this part")
    pytest.skip(why)


def _no_network() -> tuple[list[str], str]:
    """A command prefix that cuts the network off, and what it is; ([], why) when none works."""
    # A new network namespace has only `lo`; that is checked, not assumed from the exit code.
    probe = "import socket; print(sorted(n for _, n in socket.if_nameindex()))"
    tried = []
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        if shutil.which(prefix[0]) is None:
            return [], "unshare is not installed"
        out = subprocess.run(
            [*prefix, sys.executable, "-c", probe], capture_output=True, text=True, check=False
        )
        if out.returncode == 0 and out.stdout.strip() == "['lo']":
            return prefix, " ".join(prefix)
        tried.append(f"{' '.join(prefix)}: {(out.stderr or out.stdout).strip()}")
    return [], "; ".join(tried)


@pytest.fixture(scope="session")
def offline() -> list[str]:
    prefix, how = _no_network()
    if prefix:
        print(f"\ninstalls run without network: {how}")
        return prefix
    reason = f"cannot cut the network off ({how}); the install ran with --no-index only"
    if os.environ.get("CI"):
        pytest.fail(reason)
    warnings.warn(reason, stacklevel=1)
    return []


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    # The running interpreter's venv is the build machine's Python, as `make wheelhouse` uses it.
    out = subprocess.run(
        [
            "make", "-C", str(REPO), "--no-print-directory", "wheelhouse",
            f"VENV={sys.prefix}", f"DIST={dist}", f"WHEEL_PYTHONS={RUNNING} {OTHER}",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    print(
        f"\nmake wheelhouse ({RUNNING} built, {OTHER} downloaded): {time.monotonic() - started:.1f} s"
    )
    found = {}
    for py in (RUNNING, OTHER):
        path = dist / f"edge-agent-{VERSION}-py{py}-linux_{ARCH}-wheelhouse.tar.gz"
        assert path.is_file(), sorted(p.name for p in dist.iterdir())
        print(f"  {path.name}: {path.stat().st_size / 1e6:.1f} MB")
        found[py] = path
    return found


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (folder,) = into.iterdir()
    assert folder.name == archive.name.removesuffix("-wheelhouse.tar.gz")
    return folder


def install(
    folder: Path, root: Path, offline: list[str], *args: str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    out = subprocess.run(
        [*offline, str(folder / "install.sh"), "--root", str(root), "--python", python, *args],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    print(
        f"\ninstall.sh --root ({folder.name}): exit {out.returncode}, {time.monotonic() - started:.1f} s"
    )
    return out


def resum(folder: Path) -> None:
    """SHA256SUMS anew after a test changed the archive on purpose."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    (folder / "SHA256SUMS").write_text(
        "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder)}\n"
            for p in files
        )
    )


def find_python(version: str) -> str | None:
    """An interpreter of that version: on PATH, or one that pyenv keeps without a shim active."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in pyenv.glob(f"versions/{version}.*/bin/python{version}"))
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_archive_layout_and_checksums(archives: dict[str, Path], tmp_path: Path) -> None:
    deps = {_norm(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in PROJECT["dependencies"]}
    test_only = {
        _norm(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
        for d in PROJECT["optional-dependencies"]["test"]
    }
    for py, archive in archives.items():
        folder = unpack(archive, tmp_path / py)
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert [n for n in names if not n.startswith("wheels/")] == [
            "BUILD-INFO", "SHA256SUMS", "agent.yaml.example", "edge-agent.service", "env.example",
            "install.sh",
        ]  # fmt: skip
        assert os.access(folder / "install.sh", os.X_OK)
        assert (folder / "install.sh").read_bytes() == (REPO / "deploy/install.sh").read_bytes()
        assert (folder / "edge-agent.service").read_bytes() == (
            REPO / "deploy/edge-agent.service"
        ).read_bytes()
        assert (folder / "env.example").read_bytes() == (REPO / "deploy/env.example").read_bytes()
        sample = (REPO / "configs/example-modbus-rtu.yaml").read_bytes()
        assert (folder / "agent.yaml.example").read_bytes() == sample
        info = dict(line.split("=", 1) for line in (folder / "BUILD-INFO").read_text().splitlines())
        assert (info["name"], info["version"], info["python"], info["arch"]) == (
            "edge-agent",
            VERSION,
            py,
            ARCH,
        )

        sums = subprocess.run(
            ["sha256sum", "--strict", "-c", "SHA256SUMS"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
        assert sums.returncode == 0, sums.stdout + sums.stderr
        listed = sorted(
            line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()
        )
        assert listed == [n for n in names if n != "SHA256SUMS"]

        wheels = [n.removeprefix("wheels/") for n in names if n.startswith("wheels/")]
        assert all(w.endswith(".whl") for w in wheels), wheels
        have = {_wheel_name_version(w)[0] for w in wheels}
        assert deps <= have, f"no wheel for {deps - have}"
        assert {"edge-agent", "pip"} <= have
        assert not have & test_only, f"test extras in the archive: {have & test_only}"
        # Binary wheels for this interpreter: its own cpXY tag or the stable ABI, nothing else.
        tag = "cp" + py.replace(".", "")
        for w in wheels:
            if not w.endswith("-none-any.whl"):
                assert f"-{tag}-{tag}-" in w or "-abi3-" in w, w
                assert f"linux_{ARCH}" in w or f"_{ARCH}" in w, w


def test_install_offline_then_again_keeps_the_configuration(
    archives: dict[str, Path], offline: list[str], tmp_path: Path
) -> None:
    folder = unpack(archives[RUNNING], tmp_path / "archive")
    root = tmp_path / "root"
    # A Python of the OS, as on a plant PC, where there is one of the right version.
    system_python = Path(f"/usr/bin/python{RUNNING}")
    python = str(system_python) if system_python.exists() else sys.executable

    first = install(folder, root, offline, python=python)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Trial install under" in first.stdout
    assert f"Installing edge-agent {VERSION}" in first.stdout
    assert "Placed a sample" in first.stdout
    # The sample's env.example still holds change-me: the check says so, and what to do next.
    assert "change-me" in first.stdout
    assert "(a trial under" in first.stdout

    etc, state, venv = root / "etc/edge-agent", root / "var/lib/edge-agent", root / "opt/edge-agent"
    assert mode(etc) == 0o750
    assert mode(state) == 0o700
    assert mode(etc / "agent.yaml") == 0o640
    assert mode(etc / "env") == 0o640
    assert (etc / "agent.yaml").read_bytes() == (
        REPO / "configs/example-modbus-rtu.yaml"
    ).read_bytes()
    assert (etc / "env").read_bytes() == (REPO / "deploy/env.example").read_bytes()
    unit = root / "etc/systemd/system/edge-agent.service"
    assert unit.read_bytes() == (REPO / "deploy/edge-agent.service").read_bytes()
    assert mode(unit) == 0o644

    # The venv holds exactly the archive's wheels, consistent among themselves.
    pip = [*offline, str(venv / "bin/python"), "-m", "pip", "--disable-pip-version-check"]
    listed = subprocess.run(
        [*pip, "list", "--format=json"], capture_output=True, text=True, check=True
    )
    installed = {_norm(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    wanted = dict(_wheel_name_version(w.name) for w in (folder / "wheels").iterdir())
    assert installed == wanted
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr

    # The console script works, from outside the repo, on the installed sample.
    agent = str(venv / "bin/edge-agent")
    schema = subprocess.run(
        [*offline, agent, "schema"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "AgentConfig" in json.loads(schema.stdout)["$defs"]
    env = {
        **os.environ,
        **dict(line.split("=", 1) for line in FILLED_ENV.replace('"', "").splitlines()),
    }
    valid = subprocess.run(
        [*offline, agent, "validate", "--offline", str(etc / "agent.yaml")],
        capture_output=True, text=True, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "OK: 2 device(s), 8 tag(s)" in valid.stdout

    # The integrator's edits, and a unit changed in place; then the same archive again.
    config = (etc / "agent.yaml").read_text().replace("id: line2-utilities", "id: line2-hall-b")
    (etc / "agent.yaml").write_text(config)
    (etc / "env").write_text(FILLED_ENV)
    unit.write_text(unit.read_text() + "# changed by hand\n")

    second = install(folder, root, offline, python=python)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"Reinstalling edge-agent {VERSION}" in second.stdout
    assert f"Kept your {etc / 'agent.yaml'}" in second.stdout
    assert f"Kept your {etc / 'env'}" in second.stdout
    assert (etc / "agent.yaml").read_text() == config
    assert (etc / "env").read_text() == FILLED_ENV
    # The env file is read as systemd reads it: the quoted password with a space passes the check.
    assert f"{etc / 'agent.yaml'}: OK: 2 device(s)" in second.stdout
    assert unit.read_bytes() == (REPO / "deploy/edge-agent.service").read_bytes()
    assert (unit.parent / "edge-agent.service.old").read_text().endswith("# changed by hand\n")
    assert (mode(etc), mode(state)) == (0o750, 0o700)
    subprocess.run([*offline, agent, "schema"], capture_output=True, check=True)


def test_archive_for_the_other_python(
    archives: dict[str, Path], offline: list[str], tmp_path: Path
) -> None:
    """The downloaded archive installs where that Python exists, and is refused by another."""
    folder = unpack(archives[OTHER], tmp_path / "archive")
    refused = install(folder, tmp_path / "refused", offline)
    assert refused.returncode == 1
    assert f"this archive is for Python {OTHER}, but" in refused.stderr
    assert not (tmp_path / "refused/opt/edge-agent").exists()

    other = find_python(OTHER)
    if other is None:
        _cannot_here(
            f"no Python {OTHER} here to install its archive with (its refusal was checked)"
        )
    done = install(folder, tmp_path / "root", offline, python=other)
    assert done.returncode == 0, done.stdout + done.stderr
    agent = tmp_path / "root/opt/edge-agent/bin/edge-agent"
    version = subprocess.run(
        [*offline, str(agent.parent / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == str(tuple(int(p) for p in OTHER.split(".")))
    schema = subprocess.run(
        [*offline, str(agent), "schema"], capture_output=True, text=True, check=True
    )
    assert "AgentConfig" in json.loads(schema.stdout)["$defs"]


def test_install_refuses_damaged_or_foreign_archives(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    """Refusals come before anything is installed, with a message a plant engineer can act on."""
    cases = {
        "damaged": "do not match SHA256SUMS",
        "arch": "this archive is for sparc64",
        "glibc": "needs glibc 2.99 or newer",
    }
    for case, message in cases.items():
        folder = unpack(archives[RUNNING], tmp_path / case)
        wheel = next((folder / "wheels").glob("edge_agent-*.whl"))
        if case == "damaged":
            with wheel.open("ab") as f:
                f.write(b"\0")  # a bad copy: the checksums are left as they were
        elif case == "arch":
            info = folder / "BUILD-INFO"
            info.write_text(info.read_text().replace(f"arch={ARCH}", "arch=sparc64"))
            resum(folder)
        else:
            shutil.copy(
                wheel, folder / "wheels" / f"future-1.0-cp311-abi3-manylinux_2_99_{ARCH}.whl"
            )
            resum(folder)
        out = install(folder, tmp_path / f"{case}-root", [])
        assert out.returncode == 1, (case, out.stdout, out.stderr)
        assert message in out.stderr, (case, out.stderr)
        assert not (tmp_path / f"{case}-root/opt/edge-agent").exists(), case

    usage = subprocess.run([str(folder / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2
    assert "--root DIR" in usage.stderr
    helped = subprocess.run([str(folder / "install.sh"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    assert "--root DIR" in helped.stdout


def test_system_install_on_a_copy_of_this_machine(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    """Without --root: the user and group, owners, modes, the check run as the agent's user.

    It runs in private mount and network namespaces in which /etc is a copy and /opt and /var/lib
    are empty folders under tmp_path: useradd and every file land there, and this machine gets
    no user, no file and no network traffic. systemd is not running in there, so systemctl is not
    called (as on a PC being set up before its first boot into service).
    """
    if os.geteuid() != 0:
        _cannot_here("needs root for mount namespaces; the --root installs above ran")
    python = f"/usr/bin/python{RUNNING}"
    if not os.access(python, os.X_OK):
        # The service's user must be able to run the interpreter: not one under /root.
        _cannot_here(f"no {python} of the OS here; the --root installs above ran")
    folder = unpack(archives[RUNNING], tmp_path / "archive")
    fake = tmp_path / "system"
    (fake / "opt").mkdir(parents=True)
    (fake / "varlib").mkdir()
    os.chmod(fake, 0o755)
    q = {"fake": shlex.quote(str(fake)), "install": shlex.quote(str(folder / "install.sh"))}
    script = """
set -eu
cp -a /etc {fake}/etc
touch {fake}/etc/.edge-agent-test-copy
mount --bind {fake}/etc /etc
mount --bind {fake}/opt /opt
mount --bind {fake}/varlib /var/lib
# Nothing below may run on the real /etc.
test -e /etc/.edge-agent-test-copy
set +e
{install} --python {python} > {fake}/first.log 2>&1; echo $? > {fake}/first.rc
printf 'MQTT_HOST=broker\\nMQTT_PASSWORD="a b"\\nINFLUX_URL=https://influx:8086\\nINFLUX_TOKEN=t\\n' \\
    > /etc/edge-agent/env
{install} --python {python} > {fake}/second.log 2>&1; echo $? > {fake}/second.rc
su -s /bin/sh -c 'cat /etc/edge-agent/env' nobody > {fake}/others.log 2>&1; echo $? > {fake}/others.rc
""".format(python=python, **q)
    real_passwd = Path("/etc/passwd").read_text()
    started = time.monotonic()
    out = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"\nsystem install twice in namespaces: {time.monotonic() - started:.1f} s")
    assert out.returncode == 0, out.stdout + out.stderr
    first, second = (fake / "first.log").read_text(), (fake / "second.log").read_text()
    assert (fake / "first.rc").read_text().strip() == "0", first
    assert (fake / "second.rc").read_text().strip() == "0", second

    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (fake / "etc/passwd").read_text().splitlines()
    }
    groups = {
        line.split(":")[0]: line.split(":")
        for line in (fake / "etc/group").read_text().splitlines()
    }
    user = passwd["edge-agent"]
    assert user[5:] == ["/nonexistent", "/usr/sbin/nologin"]
    uid, gid = int(user[2]), int(user[3])
    assert int(groups["edge-agent"][2]) == gid
    assert "edge-agent" in groups["dialout"][3].split(",")
    assert Path("/etc/passwd").read_text() == real_passwd, "the real /etc was changed"

    def owner(path: Path) -> tuple[int, int, int]:
        st = path.stat()
        return st.st_uid, st.st_gid, st.st_mode & 0o777

    etc = fake / "etc/edge-agent"
    assert owner(etc) == (0, gid, 0o750)
    assert owner(etc / "agent.yaml") == (0, gid, 0o640)
    assert owner(etc / "env") == (0, gid, 0o640)
    assert owner(fake / "varlib/edge-agent") == (uid, gid, 0o700)
    assert owner(fake / "opt/edge-agent/bin/python")[0] == 0
    # Another local user cannot read the secrets.
    assert (fake / "others.rc").read_text().strip() != "0"
    assert "Permission denied" in (fake / "others.log").read_text()

    assert "Created the system user edge-agent." in first
    assert "change-me" in first
    assert "systemctl enable --now edge-agent" in first
    # The second check ran as edge-agent with the env file's values and passed.
    assert "Created the system user" not in second
    assert "/etc/edge-agent/agent.yaml: OK: 2 device(s)" in second
