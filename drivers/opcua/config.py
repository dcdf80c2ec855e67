"""Configuration of an OPC UA device (`driver: opcua`): endpoint, security, identity, tags."""

from __future__ import annotations

__all__ = ["OpcUaDeviceConfig", "OpcUaSecurityConfig", "OpcUaTagConfig"]

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge_agent.config_types import ConfigModel, DisplayName, Name


class OpcUaTagConfig(ConfigModel):
    """One value read from an OPC UA server, addressed by NodeId or by browse path."""

    display_name: DisplayName = None
    node: str | None = Field(
        None,
        description="NodeId: 'ns=2;s=Line1.Press.Temp', 'ns=3;i=1001', 'ns=2;g=<guid>', or "
        "'nsu=<namespace uri>;s=...' (resolved at each connect: indexes change between restarts).",
    )
    path: str | None = Field(
        None, description="Browse path from Objects instead, e.g. '2:Press/2:Temperature'."
    )
    mode: Literal["subscribe", "poll"] | None = Field(
        None, description="Default: the device's mode."
    )
    sampling_interval_ms: float | None = Field(None, ge=0, description="Default: the device's.")
    deadband: float | None = Field(None, ge=0, description="Report changes larger than this only.")
    deadband_type: Literal["absolute", "percent"] = "absolute"
    scale: float = Field(1.0, description="value = raw * scale + offset (numbers only).")
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaTagConfig:
        if (self.node is None) == (self.path is None):
            raise ValueError("give either 'node' or 'path'")
        if self.node is not None and not re.match(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$", self.node):
            raise ValueError(
                f"{self.node!r} is not a NodeId: write ns=2;s=Name, ns=2;i=42 or nsu=<uri>;s=Name"
            )
        return self


class OpcUaSecurityConfig(ConfigModel):
    policy: Literal[
        "auto", "none", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"
    ] = Field(
        "auto",
        description="auto: the strongest policy the server offers with SignAndEncrypt; "
        "'none' must be chosen explicitly.",
    )
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"


class OpcUaDeviceConfig(ConfigModel):
    """A PLC or SCADA server spoken to over OPC UA (binary, opc.tcp)."""

    display_name: DisplayName = None
    driver: Literal["opcua"] = Field(description="Which protocol driver reads this device.")
    url: str = Field(description="Endpoint, e.g. opc.tcp://192.168.1.30:4840.")
    security: OpcUaSecurityConfig | Literal["none"] = Field(
        OpcUaSecurityConfig(),
        description="Security policy and mode; 'none' for an unsecured server.",
    )
    username: str | None = None
    password: SecretStr | None = Field(None, description="Use ${ENV} or ${file:/path}.")
    user_certificate: Path | None = Field(None, description="X.509 user certificate (DER or PEM).")
    user_private_key: Path | None = None
    mode: Literal["subscribe", "poll"] = Field(
        "subscribe",
        description="subscribe: the server reports changes; poll: one Read per interval.",
    )
    poll_interval_s: float = Field(
        1.0,
        ge=0.01,
        le=86400,
        description="Interval of polled tags, and of the connection check for subscribed ones.",
    )
    publishing_interval_ms: float = Field(
        500, ge=10, description="Subscription publishing interval."
    )
    sampling_interval_ms: float = Field(
        250, ge=0, description="Default sampling interval of items."
    )
    queue_size: int = Field(10, ge=1, le=10000)
    max_items_per_subscription: int = Field(
        1000, ge=1, description="Items beyond this go into further subscriptions (server limits)."
    )
    timeout_s: float = Field(5.0, gt=0, le=120, description="Seconds to wait for each answer.")
    backoff_max_s: float = Field(30.0, ge=0.1, le=3600, description="Longest wait between retries.")
    tags: dict[Name, OpcUaTagConfig] = Field(
        min_length=1, description="The values to read, by name."
    )

    @field_validator("url")
    @classmethod
    def _opc_tcp(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("an OPC UA endpoint starts with opc.tcp://")
        return value

    @model_validator(mode="after")
    def _user_identity(self) -> OpcUaDeviceConfig:
        if self.password is not None and self.username is None:
            raise ValueError("'password' goes with 'username'")
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("'user_certificate' and 'user_private_key' go together")
        return self

    @property
    def security_none(self) -> bool:
        return self.security == "none" or (
            isinstance(self.security, OpcUaSecurityConfig) and self.security.policy == "none"
        )
