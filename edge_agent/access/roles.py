"""Roles and what each may do.

viewer reads; operator also acknowledges and shelves alarms (with a reason) and enters downtime
reasons and rejects; engineer may do everything, taking alarms out of service and resetting
maintenance counters among it.
"""

from __future__ import annotations

__all__ = ["Identity", "Role", "required_role"]

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def may(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ENGINEER: 2}

# Alarm commands by the role they need; a command not listed needs an engineer.
_COMMANDS = {
    "ack": Role.OPERATOR,
    "shelve": Role.OPERATOR,
    "unshelve": Role.OPERATOR,
    "out_of_service": Role.ENGINEER,
    "in_service": Role.ENGINEER,
    "reset": Role.ENGINEER,
}


def required_role(command: str) -> Role:
    return _COMMANDS.get(command, Role.ENGINEER)


@dataclass(frozen=True, slots=True)
class Identity:
    """Someone the agent has verified: a user who logged in, or a machine with an API token."""

    name: str
    role: Role
    kind: str = "user"  # or "token"

    @property
    def label(self) -> str:
        """How records name who did it: the user name, or token:<name>."""
        return self.name if self.kind == "user" else f"{self.kind}:{self.name}"
