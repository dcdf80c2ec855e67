"""Load a configuration file: YAML with line numbers, `${...}` substitution, validation, references.

Every problem becomes a `ConfigIssue` naming file, line, dotted path and what was expected, and all
of them are reported at once, so an integrator fixes a file in one pass rather than one error per run.
"""

from __future__ import annotations

__all__ = ["json_schema", "load_config"]

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from edge_agent.compute.expression import Expression, ExpressionError
from edge_agent.config_models import AgentFile
from edge_agent.errors import ConfigError, ConfigIssue

Loc = tuple[str | int, ...]

# ${VAR}, ${VAR:-default}, ${VAR:+alternative}, ${VAR:?message}, ${file:/path}; $${ is a literal ${
_SUBST = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+|:\?)(.*))?", re.S)
_SECRET_KEYS = re.compile(r"password|token|secret|key", re.IGNORECASE)


def load_config(path: str | Path) -> AgentFile:
    """Read, substitute, validate and cross-check one file; raise ConfigError listing every issue."""
    source = _Source(str(path))
    text = source.read(Path(path))
    tree = source.parse(text)
    plain = source.substitute(tree, ())
    if source.issues:
        raise ConfigError(source.issues)
    try:
        config = AgentFile.model_validate(plain)
    except ValidationError as exc:
        raise ConfigError([source.issue_for(err) for err in exc.errors()]) from None
    problems = [source.at(loc, message) for loc, message in check_semantics(config)]
    if problems:
        raise ConfigError(problems)
    return config


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration file, for editors that complete and check YAML."""
    schema = AgentFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edge-agent configuration"
    return schema


class _Source:
    """One file being loaded: where each path stands, and the issues found so far."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.redacted: set[Loc] = set()
        self.secrets: set[str] = set()
        self.sequences: set[Loc] = set()
        self.selectors: dict[Loc, str] = {}
        self.issues: list[ConfigIssue] = []

    def read(self, path: Path) -> str:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                [ConfigIssue(self.file, None, "", f"cannot read the file: {exc.strerror}")]
            ) from None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            message = f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02X}); save it as UTF-8"
            raise ConfigError([ConfigIssue(self.file, line, "", message)]) from None

    def parse(self, text: str) -> Any:
        yaml = YAML(typ="rt")
        try:
            tree = yaml.load(text)
        except MarkedYAMLError as exc:
            raise ConfigError([ConfigIssue(self.file, *_yaml_syntax(exc))]) from None
        except YAMLError as exc:
            raise ConfigError([ConfigIssue(self.file, None, "", f"YAML syntax: {exc}")]) from None
        if tree is None:
            raise ConfigError([ConfigIssue(self.file, 1, "", "the file is empty")])
        if not isinstance(tree, CommentedMap):
            raise ConfigError(
                [
                    ConfigIssue(
                        self.file, 1, "", "the top level must be a mapping (agent:, devices:, ...)"
                    )
                ]
            )
        self.lines[()] = 1
        return tree

    def substitute(self, node: Any, loc: Loc) -> Any:
        """A plain copy of the YAML tree with `${...}` resolved, noting each path's line."""
        if isinstance(node, CommentedMap):
            out: dict[Any, Any] = {}
            for selector in ("type", "driver"):
                if isinstance(node.get(selector), str):
                    self.selectors[loc] = node[selector]  # pydantic puts it into error paths
            for key, value in node.items():
                # Keys are names: `101:` or `1: Die jam` are text to the agent, not numbers.
                child = (*loc, str(key))
                self.lines[child] = _key_line(node, key)
                out[str(key)] = self.substitute(value, child)
            return out
        if isinstance(node, CommentedSeq):
            self.sequences.add(loc)
            items = []
            for index, value in enumerate(node):
                child = (*loc, index)
                self.lines[child] = (
                    node.lc.item(index)[0] if index in node.lc.data else node.lc.line
                ) + 1
                items.append(self.substitute(value, child))
            return items
        if isinstance(node, TaggedScalar) or getattr(getattr(node, "tag", None), "value", None):
            tag = getattr(getattr(node, "tag", None), "value", "?")
            self.issues.append(
                self.at(
                    loc,
                    f"the YAML tag {tag} is not supported; "
                    "take values from outside the file with ${VAR} or ${file:/path}",
                )
            )
            return None
        if isinstance(node, str):
            return self._expand(str(node), loc)
        if isinstance(node, bool):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        return node

    def _expand(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            value, secret = self._resolve(match.group(1), loc)
            if secret or (loc and _SECRET_KEYS.search(str(loc[-1]))):
                self.redacted.add(loc)
                if value:
                    self.secrets.add(value)
            return value

        return _SUBST.sub(replace, text)

    def _resolve(self, expr: str, loc: Loc) -> tuple[str, bool]:
        if expr.startswith("file:"):
            target = expr[5:]
            try:
                return Path(target).read_text(encoding="utf-8").rstrip("\r\n"), True
            except OSError as exc:
                self.issues.append(
                    self.at(loc, f"cannot read secret file {target}: {exc.strerror}")
                )
            except UnicodeDecodeError:
                self.issues.append(
                    self.at(loc, f"cannot read secret file {target}: not UTF-8 text")
                )
            return "", True
        match = _VARIABLE.fullmatch(expr)
        if match is None:
            self.issues.append(
                self.at(
                    loc,
                    f"'${{{expr}}}' is not a variable reference "
                    "(use ${NAME}, ${NAME:-default} or ${file:/path})",
                )
            )
            return "", False
        name, op, arg = match.groups()
        value = os.environ.get(name, "")
        if op == ":-":
            return (value or arg), False
        if op == ":+":
            return (arg if value else ""), False
        if op == ":?" and not value:
            self.issues.append(
                self.at(
                    loc, f"environment variable {name} is not set or empty: {arg or 'required'}"
                )
            )
        elif op is None and name not in os.environ:
            self.issues.append(self.at(loc, f"environment variable {name} is not set"))
        return value, False

    def at(self, loc: Loc, message: str) -> ConfigIssue:
        found, _ = self._locate(loc)
        return ConfigIssue(
            self.file, self.lines.get(found), self._dotted(loc), self._scrub(message)
        )

    def issue_for(self, error: Any) -> ConfigIssue:
        loc = tuple(error["loc"])
        if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            # The kind of a device or alarm (`driver:`, `type:`): point at that key itself.
            loc = (*loc, str(error["ctx"]["discriminator"]).strip("'"))
        found, shown = self._locate(loc)
        message = _explain(error, redact=found in self.redacted)
        return ConfigIssue(
            self.file, self.lines.get(found), self._dotted(shown), self._scrub(message)
        )

    def _scrub(self, message: str) -> str:
        # Whatever built the message, a secret never leaves this object.
        for secret in self.secrets:
            message = message.replace(secret, "***")
        return message

    def _dotted(self, loc: Loc) -> str:
        text = ""
        for i, step in enumerate(loc):
            if isinstance(step, int) and loc[:i] in self.sequences:
                text += f"[{step}]"
            else:
                text += f".{step}" if text else str(step)
        return text

    def _locate(self, loc: Loc) -> tuple[Loc, Loc]:
        """The deepest path present in the file, and the path to show a person.

        Pydantic adds steps that are not YAML keys (a union's tag, a validator's name); they are
        skipped. A last step that is absent is a missing key: shown, located at its parent.
        """
        found: Loc = ()
        shown: Loc = ()
        for i, step in enumerate(loc):
            if (*found, step) in self.lines:
                found = (*found, step)
                shown = (*shown, step)
            elif self.selectors.get(found) == step:
                continue  # a union's tag, not a key
            elif (
                i == len(loc) - 1
                and isinstance(step, str)
                and not step.startswith(("function-", "["))
            ):
                shown = (*shown, step)
        return found, shown


def _key_line(node: CommentedMap, key: Any) -> int:
    """1-based line of a key; a key brought in by `<<: *anchor` is found where the anchor wrote it."""
    if key in node.lc.data:
        return int(node.lc.key(key)[0]) + 1
    for entry in getattr(node, "merge", ()):
        merged = entry[1] if isinstance(entry, tuple) else entry  # ruamel < 0.19: (index, map)
        if isinstance(merged, CommentedMap) and key in merged:
            return _key_line(merged, key)
    return int(node.lc.line) + 1


def _yaml_syntax(exc: MarkedYAMLError) -> tuple[int | None, str, str]:
    problem = exc.problem or "not valid YAML"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    if "\\t" in problem or "\t" in problem:
        return line, "", "YAML syntax: a tab character; YAML indents with spaces only"
    if (
        "<block end>" in problem
        or "block mapping" in problem
        or "mapping values are not allowed" in problem
    ):
        return (
            line,
            "",
            f"YAML syntax: this line is not indented like its neighbours ({problem}); check the indent",
        )
    context = exc.context or ""
    if exc.context_mark is not None and "flow" in context and exc.problem_mark is not None:
        # An unclosed { or [: the line that opened it is where to look.
        opened = exc.context_mark.line + 1
        return (
            opened,
            "",
            f"YAML syntax: the {{ or [ opened here is not closed (line {line}: {problem})",
        )
    return line, "", f"YAML syntax: {problem}"


_PATTERN_TEXT = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a name has letters, digits and '_' only, and does not start with a digit",
    r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$": "a tag is written device.tag",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$": "a time is written HH:MM, from 00:00 to 23:59",
    r"^[A-Za-z0-9_-]{1,64}$": "an agent id has letters, digits, '-' and '_' only (at most 64)",
}


def _explain(error: Any, *, redact: bool) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        guess = difflib.get_close_matches(key, _all_field_names(), n=1, cutoff=0.7)
        return f"unknown key '{key}'" + (f"; did you mean '{guess[0]}'?" if guess else "")
    if kind in ("missing", "union_tag_not_found"):
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        key = str(ctx["discriminator"]).strip("'")
        return f"unknown {key} {ctx['tag']!r}; expected one of {ctx['expected_tags']}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "list_type"):
        what = (
            "a list (lines starting with '- ')"
            if kind == "list_type"
            else "a mapping (key: value lines)"
        )
        return f"is empty; {what} is expected here" if given is None else f"expected {what}"
    if kind == "string_pattern_mismatch":
        text = _PATTERN_TEXT.get(str(error.get("ctx", {}).get("pattern")), str(error["msg"]))
        return text if redact else f"{text} (got {given!r})"
    if kind == "too_short" and given in ({}, []):
        return "needs at least one entry"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if redact or isinstance(given, dict | list) or kind.startswith("value_error"):
        return message
    return f"{message} (got {given!r})"


_FIELD_NAMES: list[str] = []


def _all_field_names() -> list[str]:
    if not _FIELD_NAMES:
        _FIELD_NAMES.extend(sorted(set(_walk_fields(AgentFile))))
    return _FIELD_NAMES


def _walk_fields(model: type[BaseModel], seen: set[type] | None = None) -> Iterator[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        yield name
        for arg in _types_in(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _walk_fields(arg, seen)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _types_in(arg)


# ---------------------------------------------------------------------------------- references


def check_semantics(config: AgentFile) -> list[tuple[Loc, str]]:
    """What one model cannot see alone: references between sections, tags against their device."""
    tags = {f"{d}.{t}" for d, device in config.devices.items() for t in device.tags}
    problems: list[tuple[Loc, str]] = []
    for name, device in config.devices.items():
        if device.driver == "modbus":
            problems += _check_device_tags(("devices", name), device)

    def need_tag(loc: Loc, ref: str) -> None:
        if ref not in tags:
            problems.append((loc, _unknown("tag", ref, tags)))

    def need_rule(loc: Loc, text: str | None) -> None:
        if text is None:
            return
        try:
            refs = Expression(text).refs
        except ExpressionError as exc:
            problems.append((loc, str(exc)))
            return
        for ref in sorted(refs):
            need_tag(loc, ref)

    for name, machine in config.machines.items():
        base: Loc = ("machines", name)
        if machine.calendar is not None and machine.calendar not in config.calendars:
            problems.append(
                ((*base, "calendar"), _unknown("calendar", machine.calendar, config.calendars))
            )
        for field in ("running", "fault", "planned"):
            need_rule((*base, "state", field), getattr(machine.state, field))
        if machine.state.reason is not None:
            need_tag((*base, "state", "reason"), machine.state.reason)
        if machine.counters is not None:
            for field in ("total", "good", "reject"):
                ref = getattr(machine.counters, field)
                if ref is not None:
                    need_tag((*base, "counters", field), ref)
    for index, alarm in enumerate(config.alarms):
        if hasattr(alarm, "tag"):
            need_tag(("alarms", index, "tag"), alarm.tag)
        need_rule(("alarms", index, "suppress_when"), alarm.suppress_when)
        need_rule(("alarms", index, "when"), alarm.when)
        need_rule(("alarms", index, "running"), getattr(alarm, "running", None))
        if alarm.machine is not None and alarm.machine not in config.machines:
            problems.append(
                (("alarms", index, "machine"), _unknown("machine", alarm.machine, config.machines))
            )
    ids = [alarm.id for alarm in config.alarms]
    for index, alarm in enumerate(config.alarms):
        if ids.index(alarm.id) != index:
            problems.append((("alarms", index, "id"), f"alarm id '{alarm.id}' is used twice"))
    return problems


def _unknown(what: str, name: str, known: Any) -> str:
    names = sorted(known)
    guess = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if guess:
        return f"unknown {what} '{name}'; did you mean '{guess[0]}'?"
    listed = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
    return f"unknown {what} '{name}'" + (
        f" (defined: {listed})" if names else f" (no {what}s are defined)"
    )


def _check_device_tags(base: Loc, device: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for name, tag in device.tags.items():
        loc = (*base, "tags", name, "address")
        if tag.address < device.addressing:
            problems.append(
                (loc, f"address {tag.address} does not exist with addressing 1 (the first is 1)")
            )
        limit = device.max_registers_per_request if tag.table in ("holding", "input") else None
        if limit is not None and tag.size > limit:
            problems.append(
                (
                    (*base, "tags", name),
                    f"spans {tag.size} registers; max_registers_per_request is {limit}",
                )
            )
        if tag.address - device.addressing + tag.size > 65536:
            problems.append(
                (loc, f"the tag runs past address 65535 ({tag.size} registers from {tag.address})")
            )
    return problems
