"""A trusted OPC UA certificate that expires within 30 days raises an alarm; a renewed one clears it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from drivers.opcua.pki import trust
from edge_agent.agent import Agent
from edge_agent.config_models import AgentFile


def certificate(days: int) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=300))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def agent(pki: Path) -> Agent:
    return Agent(
        AgentFile.model_validate(
            {
                "agent": {"id": "t", "pki_path": str(pki), "buffer_path": str(pki / "outbox.db")},
                "devices": {
                    "plc": {
                        "driver": "opcua",
                        "url": "opc.tcp://127.0.0.1:4840",
                        "tags": {"x": {"node": "ns=2;s=X"}},
                    }
                },
            }
        )
    )


def test_expiring_certificate_raises_an_alarm_and_a_renewed_one_clears_it(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    old = trust(pki, certificate(days=10))
    trust(pki, certificate(days=400))  # far from expiry: no alarm
    a = agent(pki)
    a._check_drivers()
    alarms = [r for r in a.outbox._pending if r.kind == "alarm"]
    assert len(alarms) == 1
    body = alarms[0].body
    assert body["id"] == f"certificate_{old.stem[:16]}" and body["state"] == "unack_active"
    assert (
        body["type"] == "system" and body["priority"] == "high" and "expires on" in body["message"]
    )
    old.unlink()  # replaced by a renewed certificate
    a._check_drivers()
    cleared = [r for r in a.outbox._pending if r.kind == "alarm"][-1]
    assert cleared.body["state"] == "unack_rtn"
