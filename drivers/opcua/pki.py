"""The agent's own OPC UA application certificate, and the servers it trusts.

Layout under `agent.pki_path`: own/cert.der + own/key.pem (made on first start, application URI
urn:edge-agent:<agent id>), trusted/<fingerprint>.der (servers trusted by `edge-agent opcua trust`).
Files are 0600 and `own/`, `trusted/` 0700 (see edge_agent.private_files).
"""

from __future__ import annotations

__all__ = ["OwnCertificate", "expiring", "fingerprint", "is_trusted", "own_certificate", "trust"]

import asyncio
import hashlib
import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    setup_self_signed_certificate,
)
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.private_files import private_dir, restrict, write_private

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnCertificate:
    cert: Path
    key: Path
    application_uri: str
    not_after: datetime


def application_uri(agent_id: str) -> str:
    return f"urn:edge-agent:{agent_id}"


async def own_certificate(pki: Path, agent_id: str) -> OwnCertificate:
    """The agent's certificate, created (valid one year) when missing or no longer valid."""
    private_dir(pki)
    own = private_dir(pki / "own", ours=True)
    cert, key = own / "cert.der", own / "key.pem"
    uri = application_uri(agent_id)
    existed = cert.exists() and key.exists()
    if not key.is_file():
        await asyncio.to_thread(_new_key, key, cert)
    restrict(key)  # a key of an earlier version, written 0644
    await setup_self_signed_certificate(
        key,
        cert,
        uri,
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": f"edge-agent {agent_id}", "organizationName": "edge-agent"},
    )
    restrict(cert)  # asyncua writes it with the umask's mode; own/ is 0700 meanwhile
    certificate = x509.load_der_x509_certificate(cert.read_bytes())
    not_after = certificate.not_valid_after_utc
    if not existed:
        _log.info(
            "created the agent's OPC UA certificate %s for %s, valid until %s (fingerprint %s)",
            cert,
            uri,
            not_after.date(),
            fingerprint(cert.read_bytes()),
        )
    days = (not_after - datetime.now(UTC)).days
    if days < 30:
        _log.warning("the agent's OPC UA certificate %s expires in %d days", cert, days)
    return OwnCertificate(cert, key, uri, not_after)


def _new_key(key: Path, cert: Path) -> None:
    # Written here, 0600 from its creation, rather than by asyncua (which would make it 0644 less
    # the umask). A certificate of another key is worthless: it goes first (so a crash between
    # the two steps cannot leave a mismatched pair), and asyncua makes a new one.
    cert.unlink(missing_ok=True)
    write_private(key, dump_private_key_as_pem(generate_private_key()))


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as colon-separated hex, as certificate tools show it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def is_trusted(pki: Path, der: bytes) -> bool:
    return (pki / "trusted" / _file_name(der)).exists()


def trust(pki: Path, der: bytes) -> Path:
    private_dir(pki)
    trusted = private_dir(pki / "trusted", ours=True)
    return write_private(trusted / _file_name(der), der)


def _file_name(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()[:32] + ".der"


def expiring(pki: Path, within_days: int = 30) -> list[tuple[str, str, datetime]]:
    """(key, what, expiry) of the agent's own and trusted certificates that expire soon."""
    found = []
    candidates = [(pki / "own" / "cert.der", "the agent's own OPC UA certificate")]
    candidates += [
        (p, f"trusted server certificate {p.name}") for p in sorted((pki / "trusted").glob("*.der"))
    ]
    now = datetime.now(UTC)
    for path, what in candidates:
        if not path.exists():
            continue
        try:
            not_after = x509.load_der_x509_certificate(path.read_bytes()).not_valid_after_utc
        except ValueError:
            continue
        if (not_after - now).days < within_days:
            found.append((path.stem[:16], what, not_after))
    return found
