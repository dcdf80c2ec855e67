"""`edge-agent replay`, `alarm` and `buffer`: tools beside a running agent that connect to none of its devices."""

from __future__ import annotations

__all__ = ["add_commands"]

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.errors import EdgeAgentError

if TYPE_CHECKING:
    pass


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    replay = sub.add_parser("replay", help="run the compute core over recorded samples (CSV)")
    replay.add_argument("config", type=Path)
    replay.add_argument(
        "--input", type=Path, required=True, help="CSV: ts,device,tag,value[,quality]"
    )
    replay.add_argument("--until", help="advance time to this ISO 8601 instant, closing windows")
    replay.add_argument("--output", type=Path, help="JSON Lines file (default: standard output)")
    replay.add_argument("--state", type=Path, help="resume from this state file and save to it")
    replay.set_defaults(command=_cmd_replay)

    alarm = sub.add_parser(
        "alarm", help="list alarms, or ack / shelve / reset one, on a running agent"
    )
    alarm.add_argument(
        "action",
        choices=["list", "ack", "shelve", "unshelve", "reset", "out_of_service", "in_service"],
    )
    alarm.add_argument("id", nargs="?", help="alarm id (not for list)")
    alarm.add_argument(
        "--for",
        dest="duration_s",
        type=float,
        help="seconds: for shelve (required, at most 7 days) and out_of_service (default "
        "agent.out_of_service_default_h, at most agent.out_of_service_max_days)",
    )
    alarm.add_argument(
        "--reason", help="why (a work order, a fault): required for shelve and out_of_service"
    )
    alarm.add_argument(
        "--token",
        default=os.environ.get("EDGE_AGENT_TOKEN"),
        help="an API token ('edge-agent token create'); default: $EDGE_AGENT_TOKEN",
    )
    alarm.add_argument(
        "--config",
        type=Path,
        help="the agent's configuration: its local page's port is taken from there",
    )
    alarm.add_argument(
        "--url", help="the agent's local page (default: from --config, else http://127.0.0.1:8080)"
    )
    alarm.set_defaults(command=_cmd_alarm)

    buffer = sub.add_parser(
        "buffer", help="what waits in the local buffer, and the records servers refused"
    )
    buffer.add_argument("config", type=Path, help="the agent's configuration (for the file path)")
    buffer.add_argument("--limit", type=int, default=20, help="refused records to show")
    buffer.add_argument("--json", action="store_true", help="print JSON")
    buffer.set_defaults(command=_cmd_buffer)


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.replay import ReplayError, checked_ts_ns, iter_batches, replay

    config = load_config(args.config, secrets=False)  # replays offline: no server is spoken to
    until_ns = None
    if args.until:
        try:
            until_ns = checked_ts_ns(args.until)
        except ValueError as exc:
            raise ReplayError(f"--until {args.until!r} {exc}") from None
    # iter_batches checks the whole file before it returns: a broken one leaves --output alone.
    with contextlib.closing(iter_batches(args.input, config)) as batches:
        if args.output is None:
            counts = replay(config, batches, sys.stdout, until_ns=until_ns, state_file=args.state)
        else:
            with args.output.open("w", encoding="utf-8") as out:
                counts = replay(config, batches, out, until_ns=until_ns, state_file=args.state)
    print(
        f"{counts.batches} sample batch(es) replayed, {counts.records} record(s) written",
        file=sys.stderr,
    )
    return 0


def _cmd_alarm(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    base = _page_url(args).rstrip("/")
    if args.action == "list":
        request = urllib.request.Request(f"{base}/api/alarms")
    else:
        if not args.id:
            raise EdgeAgentError(f"'alarm {args.action}' needs an alarm id")
        if not args.token:
            raise EdgeAgentError(
                "a command needs an API token: --token or EDGE_AGENT_TOKEN (make one with "
                "'edge-agent token create --name NAME --role operator --config FILE')"
            )
        body = {
            **({"duration_s": args.duration_s} if args.duration_s else {}),
            **({"reason": args.reason} if args.reason else {}),
        }
        host = urllib.parse.urlsplit(base).netloc
        request = urllib.request.Request(
            f"{base}/api/alarms/{args.id}/{args.action}",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {args.token}",
                "Host": host,
            },
            method="POST",
        )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reply = json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError) as exc:
        raise EdgeAgentError(
            f"no agent answers at {base} ({exc}); is it running with agent.http on?"
        ) from None
    if args.action == "list":
        for a in reply["alarms"]:
            print(f"{a['id']:<24} {a['state']:<15} {a['priority']:<7} {a['detail'] or ''}")
        return 0
    if not reply.get("ok"):
        raise EdgeAgentError(reply.get("error", "the agent refused the command"))
    print(f"{reply['id']}: {reply['command']} done; state {reply['state']}")
    return 0


def _page_url(args: argparse.Namespace) -> str:
    """--url, else the local page of the agent --config describes, else the default port."""
    if args.url:
        return str(args.url)
    if args.config is None:
        return "http://127.0.0.1:8080"
    from edge_agent.config import load_config

    http = load_config(args.config, secrets=False).agent.http
    if not http.enabled:
        raise EdgeAgentError(f"{args.config}: agent.http is off, so the agent has no page to ask")
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{http.port}"


def _cmd_buffer(args: argparse.Namespace) -> int:
    from edge_agent.buffer_inspect import inspect_buffer
    from edge_agent.config import load_config
    from edge_agent.timefmt import iso_utc

    info = inspect_buffer(load_config(args.config, secrets=False).agent.buffer_path, args.limit)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    age = info["oldest_record_age_s"]
    print(
        f"{info['path']}: {info['records']} records, {info['bytes'] / 1e6:.1f} MB on disk"
        + (f", the oldest from {age} s ago" if age is not None else "")
    )
    for sink, cursor in info["sinks"].items():
        print(f"  {sink}: {cursor['pending']} records to deliver")
    print(f"{info['quarantined']} record(s) refused by a server and kept aside")
    for row in info["quarantine"]:
        body = row["body"] if len(row["body"]) <= 200 else row["body"][:200] + "…"
        print(
            f"  {iso_utc(row['at_ns'])} {row['sink']} refused {row['kind']} {row['key']} "
            f"(seq {row['seq']}): {row['error']}\n    {body}"
        )
    return 0
