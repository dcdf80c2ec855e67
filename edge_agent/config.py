"""Load a configuration file: YAML with line numbers, `${...}` substitution, validation, references.

Every problem becomes a `ConfigIssue` naming file, line, dotted path and what was expected, and all
of them are reported at once, so an integrator fixes a file in one pass rather than one error per run.

A file may be hostile or broken in ways that would hang or crash a naive loader; each is refused
with a line number, within a second or two, before it costs more:
- the file is a regular file of at most 1 MiB (a FIFO would block for ever, /dev/zero never end);
- YAML nests at most 32 levels (ruamel.yaml composes recursively), and holds at most 100,000
  values and 4 MiB of text once aliases are expanded (`*a` repeats its whole anchor, and aliases
  of aliases multiply: the "billion laughs"). Anchors and merge keys (`<<: *press`) stay allowed:
  configurations use them to share a device's block. An alias inside its own anchor is refused.
- a `${file:/path}` secret is a regular file of at most 64 KiB, and all that `${...}` brings in
  adds up to at most 1 MiB;
- secret fields (`password`, `token`) are redacted from messages whatever their YAML type, and
  the placeholder `change-me` of deploy/env.example is refused there.

Loading also finds what is valid but unwise: a password or token that would travel in plain text.
Those come back as warnings (`load_config_with_warnings`), and `load_config` logs them.
"""

from __future__ import annotations

__all__ = ["json_schema", "load_config", "load_config_with_warnings"]

import contextlib
import difflib
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from edge_agent.config_checks import check_semantics, plaintext_warnings
from edge_agent.config_models import AgentFile
from edge_agent.errors import ConfigError, ConfigIssue
from edge_agent.redaction import remember_secrets, secrets_in
from edge_agent.sinks import SINK_TYPES, implied_type

Loc = tuple[str | int, ...]

# ${VAR}, ${VAR:-default}, ${VAR:+alternative}, ${VAR:?message}, ${file:/path}; $${ is a literal ${
_SUBST = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+|:\?)(.*))?", re.S)
_SECRET_KEYS = re.compile(r"password|token|secret|key", re.IGNORECASE)
# What deploy/env.example ships in its secret lines, for people to replace.
_PLACEHOLDER = re.compile(r"\s*change[-_ ]?me\s*", re.IGNORECASE)
# What a secret that cannot be read is taken as by commands that connect to nothing.
_UNREAD_SECRET = "(not read by this command)"


class _SecretNotAvailableError(Exception):
    pass


_KiB = 1024
_MiB = 1024 * 1024
# About 13,000 OPC UA tags written one per line; a plant cell needs a few hundred.
_MAX_FILE_BYTES = 1 * _MiB
# A password, a token, a PEM certificate: kilobytes.
_MAX_SECRET_FILE_BYTES = 64 * _KiB
# What every ${...} of a file brings in, together: as much as the file itself may hold.
_MAX_SUBSTITUTED_CHARS = 1 * _MiB
# The deepest key of the schema is 7 levels down (calendars.x.shifts[0].breaks[0].start).
_MAX_DEPTH = 32
# After alias expansion. A 1 MiB file of tags is about 80,000 values; parsing 100,000 takes
# about 2 s on a small PC, which bounds how long a hostile file can keep the loader busy.
_MAX_VALUES = 100_000
_MAX_EXPANDED_CHARS = 4 * _MiB
# Python refuses int() of more than 4300 decimal digits (a ValueError deep in ruamel.yaml).
_MAX_DIGITS = 1000
_LONG_NUMBER = re.compile(rf"[-+]?[0-9][0-9_]{{{_MAX_DIGITS},}}")
# Beyond this many issues the rest is one more line: an expanded alias can repeat one mistake
# a hundred thousand times.
_MAX_ISSUES = 100

_log = logging.getLogger(__name__)


def load_config(path: str | Path, *, secrets: bool = True) -> AgentFile:
    """Read, substitute, validate and cross-check one file; raise ConfigError listing every issue.

    Warnings (a password that would travel in plain text) are logged, each as one line. With
    `secrets=False` (commands that connect to nothing: buffer, replay, alarm, validate
    --offline) a secret field whose ${VAR} is not set or whose ${file:…} cannot be read is
    not an error: on a plant PC those are for the service's user only."""
    config, warnings = load_config_with_warnings(path, secrets=secrets)
    for warning in warnings:
        _log.warning("%s", warning)
    return config


def load_config_with_warnings(
    path: str | Path, *, secrets: bool = True
) -> tuple[AgentFile, list[ConfigIssue]]:
    """`load_config`, with the warnings returned (file, line, path, message) instead of logged."""
    source = _Source(str(path), secrets=secrets)
    text = source.read(Path(path))
    tree = source.parse(text)
    plain = source.substitute(tree, ())
    if source.issues:
        raise _config_error(source.issues)
    try:
        config = AgentFile.model_validate(plain)
    except ValidationError as exc:
        raise _config_error([source.issue_for(err) for err in exc.errors()]) from None
    problems = [source.at(loc, message) for loc, message in check_semantics(config)]
    if problems:
        raise _config_error(problems)
    # For the log lines and the page: no secret of this file is shown at run time either.
    remember_secrets(source.secrets | secrets_in(config))
    return config, [source.at(loc, message) for loc, message in plaintext_warnings(config)]


def _config_error(issues: list[ConfigIssue]) -> ConfigError:
    if len(issues) <= _MAX_ISSUES:
        return ConfigError(issues)
    more = ConfigIssue(issues[0].file, None, "", f"... and {len(issues) - _MAX_ISSUES} more")
    return ConfigError([*issues[:_MAX_ISSUES], more])


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration file, for editors that complete and check YAML."""
    schema = AgentFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edge-agent configuration"
    return schema


class _Source:
    """One file being loaded: where each path stands, and the issues found so far."""

    def __init__(self, file: str, *, secrets: bool = True) -> None:
        self.file = file
        self.need_secrets = secrets
        self.lines: dict[Loc, int] = {}
        self.redacted: set[Loc] = set()
        self.secrets: set[str] = set()
        self.sequences: set[Loc] = set()
        self.selectors: dict[Loc, str] = {}
        self.issues: list[ConfigIssue] = []
        self.substituted_chars = 0
        self.secret_files: dict[str, str | _Unreadable] = {}

    def read(self, path: Path) -> str:
        try:
            raw = _read_regular_file(path, _MAX_FILE_BYTES, "a configuration file")
        except _Unreadable as exc:
            raise ConfigError(
                [ConfigIssue(self.file, None, "", f"cannot read the file: {exc}")]
            ) from None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            message = f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02X}); save it as UTF-8"
            raise ConfigError([ConfigIssue(self.file, line, "", message)]) from None

    def parse(self, text: str) -> Any:
        if issues := self._input_method_slips(text):
            raise ConfigError(issues)
        try:
            self._check_limits(text)
            tree = YAML(typ="rt").load(text)
        except ConfigError:  # a limit crossed: the file is not composed at all
            raise
        except MarkedYAMLError as exc:
            raise ConfigError([ConfigIssue(self.file, *_yaml_syntax(exc))]) from None
        except YAMLError as exc:
            raise ConfigError([ConfigIssue(self.file, None, "", f"YAML syntax: {exc}")]) from None
        except Exception as exc:  # ruamel.yaml's converters raise whatever they meet
            # `2024-13-45` (a date), `!!float abc`: ValueError, TypeError from deep inside.
            message = f"YAML: this value cannot be read ({exc})"
            raise ConfigError(
                [ConfigIssue(self.file, _failing_scalar(text), "", message)]
            ) from None
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

    def _check_limits(self, text: str) -> None:
        """Walk the parser's events (flat, no recursion) and stop at the first limit crossed.

        Counts values and text as they would be after alias expansion: an alias adds what its
        anchor holds. This runs before ruamel.yaml composes the tree, which recurses per level."""
        depth = values = chars = aliases = 0
        open_anchors: list[tuple[str | None, int, int]] = []  # per open collection
        anchored: dict[str, tuple[int, int]] = {}  # anchor: (values, chars) it holds
        for event in YAML(typ="rt").parse(text):
            line = event.start_mark.line + 1
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise self._refuse(line, f"YAML nested deeper than {_MAX_DEPTH} levels")
                open_anchors.append((event.anchor, values, chars))
                values += 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
                anchor, values_before, chars_before = open_anchors.pop()
                if anchor is not None:
                    anchored[anchor] = (values - values_before, chars - chars_before)
            elif isinstance(event, ScalarEvent):
                if event.style is None and _LONG_NUMBER.fullmatch(event.value):
                    digits = sum(c.isdigit() for c in event.value)
                    raise self._refuse(line, f"a number of {digits} digits; no setting takes one")
                values += 1
                chars += len(event.value)
                if event.anchor is not None:
                    anchored[event.anchor] = (1, len(event.value))
            elif isinstance(event, AliasEvent):
                aliases += 1
                if any(anchor == event.anchor for anchor, _, _ in open_anchors):
                    raise self._refuse(
                        line, f"the alias *{event.anchor} is inside its own anchor &{event.anchor}"
                    )
                more_values, more_chars = anchored.get(
                    event.anchor, (1, 0)
                )  # undefined: ruamel.yaml says so next
                values += more_values
                chars += more_chars
            if values > _MAX_VALUES or chars > _MAX_EXPANDED_CHARS:
                raise self._refuse(line, _too_big(aliases))

    def _input_method_slips(self, text: str) -> list[ConfigIssue]:
        """Full-width `：` or spaces typed with a Chinese input method where YAML wants ASCII.

        Reported on their own line: YAML itself would read `host：x` as one word and complain
        about the indent of the line after, or take it silently as text.
        """
        issues = []
        for number, line in enumerate(text.splitlines(), 1):
            if match := _FULL_WIDTH_KEY.match(line):
                issues.append(
                    ConfigIssue(
                        self.file,
                        number,
                        "",
                        f"'{match.group(1)}' is followed by a full-width colon '：' (a Chinese "
                        "input method types it); YAML needs the ASCII ':' and a space",
                    )
                )
            elif _FULL_WIDTH_SPACE.match(line):
                issues.append(
                    ConfigIssue(
                        self.file,
                        number,
                        "",
                        "a full-width space '\u3000' (a Chinese input method types it) where YAML "
                        "needs an ASCII space; switch the input method to English and retype it",
                    )
                )
        return issues

    def _refuse(self, line: int, message: str) -> ConfigError:
        return ConfigError([ConfigIssue(self.file, line, "", message)])

    def substitute(self, node: Any, loc: Loc) -> Any:
        """A plain copy of the YAML tree with `${...}` resolved, noting each path's line."""
        if isinstance(node, CommentedMap):
            out: dict[Any, Any] = {}
            for selector in ("type", "driver"):
                if isinstance(node.get(selector), str):
                    self.selectors[loc] = node[selector]  # pydantic puts it into error paths
            if len(loc) == 2 and loc[0] == "sinks" and loc not in self.selectors:
                # `sinks: {mqtt: {...}}`: the name says the type, and pydantic puts that in too.
                implied = implied_type(str(loc[1]), dict(node))
                if implied is not None:
                    self.selectors[loc] = implied
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
        value = _plain_scalar(node)
        if isinstance(value, str):
            value = self._expand(value, loc)
        if loc and str(loc[-1]) in _secret_fields():
            self._note_secret(loc, value)
        return value

    def _note_secret(self, loc: Loc, value: Any) -> None:
        """A secret field: never shown, whatever its YAML type (`password: 12345` is a number)."""
        if value is None or value == "":
            return
        self.redacted.add(loc)
        text = str(value)
        if _PLACEHOLDER.fullmatch(text):
            self.secrets.discard(text)  # no secret, and the message names it
            self.issues.append(
                self.at(
                    loc,
                    f"'{text.strip()}' is the placeholder of deploy/env.example; "
                    "replace it with the real secret",
                )
            )
        else:
            self.secrets.add(text)

    def _expand(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            if self.substituted_chars > _MAX_SUBSTITUTED_CHARS:
                return ""  # reported once, where the limit was crossed
            value, secret = self._resolve(match.group(1), loc)
            self.substituted_chars += len(value)
            if self.substituted_chars > _MAX_SUBSTITUTED_CHARS:
                self.issues.append(
                    self.at(
                        loc,
                        "the values that ${...} brings into the file add up to more than "
                        f"{_size(_MAX_SUBSTITUTED_CHARS)}",
                    )
                )
                return ""
            if secret or (loc and _SECRET_KEYS.search(str(loc[-1]))):
                self.redacted.add(loc)
                if value:
                    self.secrets.add(value)
            return value

        return _SUBST.sub(replace, text)

    def _resolve(self, expr: str, loc: Loc) -> tuple[str, bool]:
        if not self.need_secrets and loc and str(loc[-1]) in _secret_fields():
            with contextlib.suppress(_SecretNotAvailableError):
                return self._resolve_secret(expr, loc)
            return _UNREAD_SECRET, True
        return self._resolve_any(expr, loc)

    def _resolve_secret(self, expr: str, loc: Loc) -> tuple[str, bool]:
        """A secret field's reference, without reporting one that cannot be resolved here."""
        before = len(self.issues)
        value, secret = self._resolve_any(expr, loc)
        if len(self.issues) > before:
            del self.issues[before:]
            raise _SecretNotAvailableError
        return value, secret

    def _resolve_any(self, expr: str, loc: Loc) -> tuple[str, bool]:
        if expr.startswith("file:"):
            target = expr[5:]
            content = self.secret_files.get(target)
            if content is None:  # each file is read once, however many aliases repeat it
                content = self.secret_files[target] = _read_secret_file(target)
            if isinstance(content, _Unreadable):
                self.issues.append(self.at(loc, f"cannot read secret file {target}: {content}"))
                return "", True
            return content, True
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


class _Unreadable(Exception):
    """Why a file is not read; the message completes "cannot read ...: "."""


def _read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """At most `limit` bytes of a regular file. Anything else is refused without being opened:
    opening a FIFO waits for a writer, and a device (/dev/zero, a serial port) may never end or
    may act on being opened."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable(f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise _Unreadable(f"it is {_size(info.st_size)}; {what} is at most {_size(limit)}")
        # Non-blocking, in case it was swapped for a FIFO since: opening does not wait then.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise _Unreadable("not a regular file")
            data = file.read(limit + 1)
    except OSError as exc:
        raise _Unreadable(exc.strerror or str(exc)) from None
    if len(data) > limit:  # grown since, or a file whose size stat does not tell (/proc)
        raise _Unreadable(f"{what} is at most {_size(limit)}")
    return data


def _read_secret_file(target: str) -> str | _Unreadable:
    try:
        raw = _read_regular_file(Path(target), _MAX_SECRET_FILE_BYTES, "a secret file")
        return raw.decode("utf-8").rstrip("\r\n")
    except _Unreadable as exc:
        return exc
    except UnicodeDecodeError:
        return _Unreadable("not UTF-8 text")


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _size(count: int) -> str:
    """1 MiB, 64 KiB for the limits; 2.0 MiB, 70.3 KiB for what was found."""
    for unit, name in ((_MiB, "MiB"), (_KiB, "KiB")):
        if count >= unit:
            whole, rest = divmod(count, unit)
            return f"{whole} {name}" if rest == 0 else f"{count / unit:.1f} {name}"
    return f"{count} bytes"


def _too_big(aliases: int) -> str:
    limits = f"more than {_MAX_VALUES} values or {_size(_MAX_EXPANDED_CHARS)} of text"
    if not aliases:
        return f"the file holds {limits}"
    return (
        f"with its aliases expanded the file holds {limits}: an alias (*name) repeats its whole "
        "anchor, and aliases of aliases multiply"
    )


def _failing_scalar(text: str) -> int | None:
    """The line of the first scalar that ruamel.yaml cannot convert, if a scalar it is.

    Only called after _check_limits passed: composing is bounded in depth and size."""
    yaml = YAML(typ="rt")
    try:
        stack = [yaml.compose(text)]
    except Exception:  # then there is no line to give
        return None
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            try:
                yaml.constructor.construct_object(node, deep=True)
            except Exception:  # whatever it raised, this is the value
                return int(node.start_mark.line) + 1
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(item for pair in reversed(node.value) for item in reversed(pair))
    return None


def _plain_scalar(node: Any) -> Any:
    # ruamel.yaml's scalar types (ScalarInt, ScalarFloat, ...) as the plain Python value.
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _key_line(node: CommentedMap, key: Any) -> int:
    """1-based line of a key; a key brought in by `<<: *anchor` is found where the anchor wrote it."""
    if key in (node.lc.data or ()):  # None for an `!!omap`
        return int(node.lc.key(key)[0]) + 1
    for entry in getattr(node, "merge", ()):
        merged = entry[1] if isinstance(entry, tuple) else entry  # ruamel < 0.19: (index, map)
        if isinstance(merged, CommentedMap) and key in merged:
            return _key_line(merged, key)
    return int(node.lc.line) + 1


# A key (our keys, device, tag and machine names are ASCII) followed by a full-width colon; a
# full-width colon inside a value (`display_name: 温度：主轴`) comes after an ASCII one.
_FULL_WIDTH_KEY = re.compile(r"^[ \u3000]*(?:-[ \u3000]+)?([A-Za-z_][\w.-]*)[ \u3000]*：")
# A full-width space in the indent, or right after a key's colon or a list's dash.
_FULL_WIDTH_SPACE = re.compile(r"^(?:[ ]*\u3000|[ ]*(?:-[ ]+)?[A-Za-z_][\w.-]*:\u3000|[ ]*-\u3000)")


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
    if kind == "union_tag_not_found" and tuple(error["loc"][:1]) == ("sinks",):
        types = ", ".join(SINK_TYPES)
        return (
            f"required key is missing: the sink's type ({types}); only a sink named after its "
            "type may leave it out"
        )
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
_SECRET_FIELDS: set[str] = set()


def _secret_fields() -> set[str]:
    """Names of the schema's secret fields (`SecretStr`): `password`, `token`."""
    if not _SECRET_FIELDS:
        _SECRET_FIELDS.update(_walk_fields(AgentFile, secret_only=True))
    return _SECRET_FIELDS


def _all_field_names() -> list[str]:
    if not _FIELD_NAMES:
        _FIELD_NAMES.extend(sorted(set(_walk_fields(AgentFile))))
    return _FIELD_NAMES


def _walk_fields(
    model: type[BaseModel], seen: set[type] | None = None, *, secret_only: bool = False
) -> Iterator[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        types = list(_types_in(field.annotation))
        if not secret_only or SecretStr in types:
            yield name
        for arg in types:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _walk_fields(arg, seen, secret_only=secret_only)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _types_in(arg)
