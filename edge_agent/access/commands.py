"""`edge-agent user …` and `edge-agent token …`: manage who may use the agent.

Passwords are asked for at a prompt (twice), never taken from the command line, where other users
of the PC could read them in the process list and the shell's history. The users file is the one
named by the agent's configuration (`agent.access_path`); the running agent reads it again when it
changes, so no restart is needed.
"""

from __future__ import annotations

__all__ = ["add_parsers"]

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from edge_agent.access.roles import Role
from edge_agent.access.store import AccessError, AccessStore

_ROLES = [r.value for r in Role]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="add, change or remove the people who may log in")
    users = user.add_subparsers(required=True, metavar="ACTION")
    add = users.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=_ROLES, required=True)
    add.set_defaults(command=_user_add)
    passwd = users.add_parser("passwd", help="set a user's password (asks for it)")
    passwd.add_argument("name")
    passwd.set_defaults(command=_user_passwd)
    role = users.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=_ROLES)
    role.set_defaults(command=_user_role)
    remove = users.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(command=_user_remove)
    listing = users.add_parser("list", help="list the users and their roles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=_user_list)

    token = sub.add_parser("token", help="API tokens for machines (SCADA, scripts)")
    tokens = token.add_subparsers(required=True, metavar="ACTION")
    create = tokens.add_parser("create", help="make a token; it is shown once")
    create.add_argument("--name", required=True, help="what uses it, e.g. scada")
    create.add_argument("--role", choices=_ROLES, required=True)
    create.set_defaults(command=_token_create)
    revoke = tokens.add_parser("revoke", help="withdraw a token")
    revoke.add_argument("name")
    revoke.set_defaults(command=_token_revoke)
    tlist = tokens.add_parser("list", help="list the tokens (names and roles, never the tokens)")
    tlist.add_argument("--json", action="store_true")
    tlist.set_defaults(command=_token_list)

    for parser in (add, passwd, role, remove, listing, create, revoke, tlist):
        parser.add_argument(
            "--config",
            type=Path,
            default=os.environ.get("EDGE_AGENT_CONFIG"),
            help="the agent's configuration (default: $EDGE_AGENT_CONFIG)",
        )


def _store(args: argparse.Namespace) -> AccessStore:
    from edge_agent.config import load_config

    if args.config is None:
        raise AccessError("which agent? give --config FILE (or set EDGE_AGENT_CONFIG)")
    store = AccessStore(load_config(args.config).agent.access_path)
    store.reload()
    return store


def _password() -> str:
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccessError("the two passwords differ; nothing was changed")
    return first


def _user_add(args: argparse.Namespace) -> int:
    store = _store(args)
    store.add_user(args.name, Role(args.role), _password())
    print(f"user {args.name} added as {args.role} ({store.path})")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    store = _store(args)
    store.set_password(args.name, _password())
    print(f"password of {args.name} changed")
    return 0


def _user_role(args: argparse.Namespace) -> int:
    _store(args).set_role(args.name, Role(args.role))
    print(f"{args.name} is now {args.role}")
    return 0


def _user_remove(args: argparse.Namespace) -> int:
    _store(args).remove_user(args.name)
    print(f"user {args.name} removed")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    users = _store(args).users()
    if args.json:
        print(json.dumps(users, ensure_ascii=False))
    elif not users:
        print("no users yet: add one with 'edge-agent user add NAME --role operator'")
    for u in [] if args.json else users:
        print(f"{u['name']:<24} {u['role']}")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    token = _store(args).create_token(args.name, Role(args.role))
    print(token)
    print(
        f"token {args.name} ({args.role}): shown this once; send it as 'Authorization: Bearer "
        "<token>'",
        file=sys.stderr,
    )
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    _store(args).revoke_token(args.name)
    print(f"token {args.name} revoked")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    tokens = _store(args).tokens()
    if args.json:
        print(json.dumps(tokens, ensure_ascii=False))
    for t in [] if args.json else tokens:
        print(f"{t['name']:<24} {t['role']:<10} made {t['created']}")
    return 0
