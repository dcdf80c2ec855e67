"""Where and how an MQTT transport connects: broker, client id, credentials, TLS, keep-alive.

Built from any sink configuration that publishes over MQTT (the JSON layout, Sparkplug), so the
transport and its checks take one shape whatever the layout above them.
"""

from __future__ import annotations

__all__ = ["MqttLink", "password_in_clear"]

from dataclasses import dataclass

from pydantic import SecretStr

from edge_agent.config_types import TlsConfig
from edge_agent.redaction import without_credentials


@dataclass(frozen=True)
class MqttLink:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = 30

    @property
    def endpoint(self) -> str:
        return f"{without_credentials(self.host)}:{self.port}"


def password_in_clear(
    password: SecretStr | None, tls: TlsConfig | None
) -> list[tuple[tuple[str, ...], str]]:
    """The load-time warning for a password that would cross the network readable."""
    if password is None or not password.get_secret_value() or tls is not None:
        return []
    return [
        (
            ("password",),
            "the password goes to the broker without TLS, readable by anyone on the "
            "network; add tls: {ca_file: ...} (the broker's TLS port is usually 8883)",
        )
    ]
