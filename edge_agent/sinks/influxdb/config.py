"""Configuration of an InfluxDB sink (`type: influxdb`): 2.x/3.x through api v2, 1.x through v1."""

from __future__ import annotations

__all__ = ["InfluxSinkConfig"]

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from edge_agent.config_types import BatchRecords, ConfigModel, FlushInterval, Switch


class InfluxSinkConfig(ConfigModel):
    """An InfluxDB server the agent writes line protocol to (see README "InfluxDB schema")."""

    type: Literal["influxdb"] = Field(
        "influxdb",
        description="Which kind of sink this is; may be left out in a sink named influxdb.",
    )
    enabled: Switch = Field(True, description="Off when false or empty.")
    api: Literal["v2", "v1"] = Field(
        "v2",
        description="v2: InfluxDB 2.x/3.x (or 1.8+), /api/v2/write with org, bucket and token; "
        "v1: InfluxDB 1.x, /write with database, retention_policy, username and password.",
    )
    url: str = Field(
        "http://localhost:8086", description="The server's address, e.g. http://influx:8086."
    )
    token: SecretStr | None = Field(
        None, description="v2: API token; use ${INFLUX_TOKEN} or ${file:/path}."
    )
    org: str = Field("", description="v2: organisation.")
    bucket: str = Field("edge", description="v2: bucket.")
    database: str | None = Field(None, description="v1: database (required with api: v1).")
    retention_policy: str | None = Field(
        None, description="v1: retention policy; default the database's default."
    )
    username: str | None = Field(None, description="v1: user, when the server has auth on.")
    password: SecretStr | None = Field(
        None, description="v1: password; use ${INFLUX_PASSWORD} or ${file:/path}."
    )
    timeout_s: float = Field(10.0, gt=0, le=300)
    verify_ssl: bool = True
    batch_records: BatchRecords = 500
    flush_interval_s: FlushInterval = Field(
        1.0,
        description="Wait up to this long for `batch_records` to gather before a write: one "
        "request a second instead of one per poll; 0 writes each as soon as it is buffered.",
    )

    @model_validator(mode="after")
    def _api_fields(self) -> InfluxSinkConfig:
        if self.api == "v1" and not self.database:
            raise ValueError("api v1 needs 'database' (the InfluxDB 1.x database to write to)")
        v1_only = [k for k in ("database", "retention_policy", "username") if getattr(self, k)]
        if self.api == "v2" and (v1_only or self.password is not None):
            names = ", ".join([*v1_only, *(["password"] if self.password is not None else [])])
            raise ValueError(f"{names}: for api v1 (InfluxDB 1.x); api v2 takes org, bucket, token")
        if self.api == "v1" and self.token is not None:
            raise ValueError("token is for api v2; InfluxDB 1.x takes username and password")
        return self
