"""Real servers for tests and benchmarks, each on a free loopback port, stopped afterwards.

mosquitto, VictoriaMetrics and InfluxDB 1.x come from Debian packages, the independent peers
from npm; `make test` installs them. A missing one is an install error, never a skipped test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PEERS = Path(__file__).resolve().parents[1] / "peers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def _require(binary: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if Path(p).exists()), None
    )
    if path is None:
        raise RuntimeError(f"{binary} is not installed: run 'make test' (it installs it)")
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Mosquitto:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    persistence: bool = False  # true: sessions and queued messages survive a restart
    # Appended to the generated configuration; a repeated option overrides the one above it
    # (e.g. `allow_anonymous false` with a password_file and an acl_file).
    extra_config: str = ""

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {self.workdir}/\n"
            if self.persistence
            else "persistence false\n"
        )
        # The default of 1000 queued messages drops QoS 1 messages for a slow test subscriber.
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
            "max_queued_messages 1000000\nmax_inflight_messages 1000\n" + self.extra_config
        )
        self.proc = subprocess.Popen(
            [_require("mosquitto"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "mosquitto.log").open("wb"),
        )
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@dataclass
class VictoriaMetrics:
    """Speaks the InfluxDB v2 write API (/api/v2/write); /api/v1/export reads points back."""

    port: int
    workdir: Path
    # A Prometheus scrape configuration: the server then scrapes like Prometheus and answers
    # PromQL on /api/v1/query_range.
    scrape_config: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        scrape = [f"-promscrape.config={self.scrape_config}"] if self.scrape_config else []
        self.proc = subprocess.Popen(
            [
                _require("victoria-metrics"),
                *scrape,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.workdir / 'vm-data'}",
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-search.latencyOffset=0s",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "victoria.log").open("wb"),
        )
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def export(self, match: str) -> list[dict[str, object]]:
        """Every series matching a selector, with all its raw samples."""
        # Fresh series become searchable after up to 10 s unless the server is told to flush.
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line]

    def wait_for(
        self, match: str, *, points: int, timeout_s: float = 15.0
    ) -> list[dict[str, object]]:
        """Poll until the selector returns at least `points` samples in total."""
        deadline = time.monotonic() + timeout_s
        series: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            # VictoriaMetrics makes fresh points searchable after about a second.
            with contextlib.suppress(OSError):
                series = self.export(match)
                if sum(len(s["values"]) for s in series) >= points:  # type: ignore[arg-type]
                    return series
            time.sleep(0.3)
        return series


@dataclass
class InfluxDB1:
    """Debian's InfluxDB 1.x (1.6), as many plants still run it: the v1 API (/write, /query with
    InfluxQL), authentication on, one admin user and one database made at start."""

    port: int
    workdir: Path
    database: str = "plant"
    username: str = "admin"
    password: str = "plant-admin-pw"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "influxdb.conf"
        rpc = free_port()
        lines = [
            "reporting-disabled = true",
            f'bind-address = "127.0.0.1:{rpc}"',
            "[meta]",
            f'  dir = "{self.workdir}/meta"',
            "[data]",
            f'  dir = "{self.workdir}/data"',
            f'  wal-dir = "{self.workdir}/wal"',
            "  query-log-enabled = false",
            "[http]",
            f'  bind-address = "127.0.0.1:{self.port}"',
            "  auth-enabled = true",
            "  log-enabled = false",
            "[monitor]",
            "  store-enabled = false",
            "[continuous_queries]",
            "  enabled = false",
        ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [_require("influxd"), "-config", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "influxd.log").open("wb"),
        )
        wait_for_port(self.port, 30, proc=self.proc)
        # With authentication on, the first user may be made without logging in: the admin.
        self.query(
            f"CREATE USER {self.username} WITH PASSWORD '{self.password}' WITH ALL PRIVILEGES",
            auth=False,
        )
        self.query(f"CREATE DATABASE {self.database}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def basic_auth(self, password: str | None = None) -> str:
        pair = f"{self.username}:{password or self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def query(self, q: str, *, auth: bool = True, db: str | None = None) -> list[dict[str, object]]:
        """An InfluxQL statement (POST /query); the series of its first result."""
        params = {"q": q, "epoch": "ms", **({"db": db} if db else {})}
        request = urllib.request.Request(
            f"{self.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST"
        )
        if auth:
            request.add_header("Authorization", self.basic_auth())
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        result = body["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL {q!r}: {result['error']}")
        return list(result.get("series", []))


@dataclass
class Nginx:
    """A reverse proxy in front of a server, refusing request bodies over `max_body` with 413.

    As plants put one in front of InfluxDB; here it is the real server that answers 4xx for a
    batch, which VictoriaMetrics never does (it skips a line it cannot parse and answers 204).
    """

    port: int
    workdir: Path
    upstream: str
    max_body: str = "8k"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        root = self.workdir / "nginx"
        root.mkdir(exist_ok=True)
        conf = root / "nginx.conf"
        # One process, no daemon, every path inside the test's directory: no root, no /var.
        conf.write_text(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"  access_log off;\n  client_body_temp_path {root}/body;\n"
            f"  proxy_temp_path {root}/proxy;\n  fastcgi_temp_path {root}/fastcgi;\n"
            f"  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n"
            f"  client_max_body_size {self.max_body};\n"
            f"  server {{ listen 127.0.0.1:{self.port};\n"
            f"    location / {{ proxy_pass {self.upstream}; }} }}\n"
            "}\n"
        )
        self.proc = subprocess.Popen(
            [_require("nginx"), "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=(root / "stderr.log").open("wb"),
        )
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@dataclass
class NodeModbusPeer:
    """The independent Modbus TCP server (npm modbus-serial), with fixed values."""

    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    def start(self) -> None:
        if not (PEERS / "node_modules" / "modbus-serial").exists():
            raise RuntimeError(
                "npm peers are not installed: run 'make test' (npm ci in tests/peers)"
            )
        self.proc = subprocess.Popen(
            [_require("node"), str(PEERS / "modbus_server.js"), "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"modbus peer did not start: {line!r}")
        self.port = int(line[1])

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@contextlib.contextmanager
def serial_pair(workdir: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals from socat: a virtual RS-485 line for Modbus RTU."""
    a, b = workdir / "ttyA", workdir / "ttyB"
    proc = subprocess.Popen(
        [_require("socat"), f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("socat did not create the serial pair")
            time.sleep(0.02)
        yield str(a), str(b)
    finally:
        _stop(proc)


@dataclass
class NodeOpcUaPeer:
    """The independent OPC UA server (npm node-opcua-server), with fixed values and a counter."""

    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/UA/Peer"

    def start(self, port: int = 0) -> None:
        if not (PEERS / "node_modules" / "node-opcua-server").exists():
            raise RuntimeError(
                "npm peers are not installed: run 'make test' (npm ci in tests/peers)"
            )
        self.proc = subprocess.Popen(
            [
                _require("node"),
                str(PEERS / "opcua_server.js"),
                str(port or self.port),
                str(self.workdir),
            ],
            stdout=subprocess.PIPE,
            stderr=(self.workdir / "opcua-peer.log").open("ab"),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()  # start-up takes 2 to 5 s
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(
                f"OPC UA peer did not start: {line!r}; see {self.workdir / 'opcua-peer.log'}"
            )
        self.port = int(line[1])

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
