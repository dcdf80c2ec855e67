"""Typed errors with one root, so callers catch what they can handle and nothing else."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "ConnectError",
    "EdgeAgentError",
    "ReadError",
    "RejectedError",
]

from dataclasses import dataclass


class EdgeAgentError(Exception):
    """Root of every error the agent raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file, located for a person to fix."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(EdgeAgentError):
    """The configuration cannot be used; carries every issue found, not only the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class ConnectError(EdgeAgentError):
    """A device or server could not be reached; the caller retries with backoff."""


class ReadError(EdgeAgentError):
    """A device answered, but not with the data asked for (e.g. a Modbus exception)."""


class RejectedError(EdgeAgentError):
    """A server refused what was sent (not how or when): resending the same batch cannot help."""
