"""Who may do what on the agent: users, API tokens, roles, sessions."""

from __future__ import annotations

from edge_agent.access.roles import Identity, Role, required_role
from edge_agent.access.sessions import Session, Sessions
from edge_agent.access.store import AccessError, AccessStore

__all__ = [
    "AccessError",
    "AccessStore",
    "Identity",
    "Role",
    "Session",
    "Sessions",
    "required_role",
]
