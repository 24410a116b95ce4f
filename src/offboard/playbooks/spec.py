"""Playbook specs: read a playbook's YAML, validate it, and freeze it into dataclasses.

Django-free on purpose, so `offboard playbook validate`, the importer and the tests can use it
without a database. Every problem is reported at once, each with the YAML line it is on.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from offboard.playbooks.about import (
    ABOUT_FILTERS,
    ACKNOWLEDGED_IN_PORTAL,
    Selector,
    step_about,
)

SERVICE_TYPES = (
    "marketing_agency",
    "managed_it",
    "software_development",
    "consulting",
    "accounting",
)
FEE_TYPES = ("fixed", "time_and_materials", "retainer")
ROLES = ("admin", "manager", "operator", "finance", "auditor")
DUE_ANCHORS = ("trigger", "notice", "end")  # trigger date / notice received date / effective end
EVIDENCE_KINDS = ("file", "link", "note", "attestation", "client_ack")
STEP_CATEGORIES = (
    "general",
    "notice",
    "deliverable",
    "handover",
    "access",
    "data_return",
    "data_deletion",
    "invoice",
    "payment",
    "approval",
)
# Auditors are read-only: they can neither own a step nor approve a closure.
OWNER_ROLES = ("case_owner", "admin", "manager", "operator", "finance")
APPROVER_ROLES = ("admin", "manager", "operator", "finance")

SEED_REGISTERS = (
    "deliverables",
    "handover_items",
    "access_grants",
    "data_dispositions",
    "settlements",
)
# Every field of a seed item, in order; absent optional fields come back as "".
SEED_FIELDS: dict[str, tuple[str, ...]] = {
    "deliverables": ("title", "description", "sow_reference"),
    "handover_items": ("kind", "name", "description", "method"),
    "access_grants": ("direction", "system", "principal", "privilege", "planned_action"),
    "data_dispositions": ("dataset", "location", "action", "method", "retention_basis"),
    "settlements": ("kind", "description"),
}
HANDOVER_KINDS = (
    "domain",
    "hosting",
    "repository",
    "ad_account",
    "analytics",
    "licence",
    "document",
    "data_export",
    "vault_entry",
    "other",
)
ACCESS_DIRECTIONS = ("provider_in_client", "client_in_provider")
ACCESS_ACTIONS = ("revoke", "transfer", "keep")
DATA_ACTIONS = ("return", "delete", "retain")
DATA_METHODS = ("export", "nist_clear", "nist_purge", "nist_destroy", "logical_delete")
SETTLEMENT_KINDS = ("final_invoice", "refund", "credit", "deposit_return")

DATA_CATEGORIES = ("data_return", "data_deletion")
MAX_SOURCE_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_ERRORS = 200

SCHEMA_PATH = Path(__file__).with_name("schema.json")
BUILTIN_DIR = Path(__file__).with_name("builtin")

_STEP_KEY = re.compile(r"[a-z0-9_]+")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# The characters YAML refuses (PyYAML's Reader.NON_PRINTABLE), checked up front so that all of
# them are reported with their lines instead of PyYAML's first one only.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_MERGE_TAG = "tag:yaml.org,2002:merge"

_PATTERN_HINTS = {
    "^[a-z0-9_]+$": "use lowercase letters, digits and underscores only, e.g. 'confirm_notice'",
    "^[a-z0-9]+(-[a-z0-9]+)*$": (
        "use lowercase letters and digits, words joined by single hyphens, e.g. 'marketing-agency'"
    ),
    "\\S": "must not be blank",
}
_TYPE_NAMES = {
    "object": "a mapping of fields",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "boolean": "true or false",
}

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class StepSpec:
    """One step of a playbook, as the case will instantiate it."""

    key: str
    phase: str
    title: str
    guidance: str
    owner_role: str
    due_anchor: str
    due_offset_days: int
    required: bool = True
    evidence: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    category: str = "general"
    fee_types: tuple[str, ...] | None = None
    # The register items whose settling completes the step (playbooks/about.py).
    about: tuple[Selector, ...] = ()
    # Days overdue before the case owner, then the managers, are told (None: the settings').
    escalate_owner_days: int | None = None
    escalate_managers_days: int | None = None

    def applies_to(self, fee_type: str) -> bool:
        return self.fee_types is None or fee_type in self.fee_types


@dataclass(frozen=True)
class ApprovalPolicy:
    min_approvers: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class PlaybookSpec:
    slug: str
    name: str
    service_type: str
    description: str
    fee_types: tuple[str, ...]
    steps: tuple[StepSpec, ...]
    seeds: dict[str, tuple[dict[str, Any], ...]] = field(hash=False)
    approval_policy: ApprovalPolicy

    def step(self, key: str) -> StepSpec:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def steps_for(self, fee_type: str) -> tuple[StepSpec, ...]:
        """The steps that apply to fee_type, with dependencies on dropped steps bridged.

        A dependency on a step that does not apply is replaced by that step's own (applying)
        dependencies, so the order the playbook asks for still holds; no key dangles.
        """
        self._check_fee_type(fee_type)
        by_key = {step.key: step for step in self.steps}
        kept = {step.key for step in self.steps if step.applies_to(fee_type)}

        def resolve(key: str, seen: set[str]) -> list[str]:
            if key in kept:
                return [key]
            if key in seen or key not in by_key:
                return []
            seen.add(key)
            return [k for dep in by_key[key].depends_on for k in resolve(dep, seen)]

        result = []
        for step in self.steps:
            if step.key not in kept:
                continue
            deps: list[str] = []
            for dep in step.depends_on:
                for key in resolve(dep, {step.key}):
                    if key not in deps and key != step.key:
                        deps.append(key)
            result.append(replace(step, depends_on=tuple(deps)))
        return tuple(result)

    def seeds_for(self, fee_type: str) -> dict[str, tuple[dict[str, Any], ...]]:
        """Seed register items that apply to fee_type, as fresh dicts without 'fee_types'."""
        self._check_fee_type(fee_type)
        return {
            register: tuple(
                {k: v for k, v in item.items() if k != "fee_types"}
                for item in items
                if "fee_types" not in item or fee_type in item["fee_types"]
            )
            for register, items in self.seeds.items()
        }

    def _check_fee_type(self, fee_type: str) -> None:
        if fee_type not in self.fee_types:
            raise ValueError(
                f"playbook {self.slug!r} does not support fee type {fee_type!r}; "
                f"it supports: {', '.join(self.fee_types)}"
            )


@dataclass(frozen=True)
class PlaybookError:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class PlaybookInvalid(Exception):
    """The playbook has problems; `errors` lists all of them, sorted by line."""

    def __init__(self, errors: Iterable[PlaybookError]) -> None:
        unique = {(e.line, e.path, e.message): e for e in errors}
        self.errors: list[PlaybookError] = sorted(
            unique.values(), key=lambda e: (e.line or 0, e.path, e.message)
        )
        super().__init__("\n".join(str(e) for e in self.errors))


def builtin_playbook_paths() -> list[Path]:
    return sorted(BUILTIN_DIR.glob("*.yaml"))


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def parse_playbook(source: str | bytes, *, stored: bool = False) -> PlaybookSpec:
    """Parse and validate a playbook; raise PlaybookInvalid listing every problem.

    `stored`: the text of a version already imported. A rule added after versions were
    stored (a `client_ack` step must be about items the portal shows) is not applied to it,
    so every stored version still reads back; new imports and validation get every rule."""
    return _parse_text(_decode(source), stored)


# A version's text never changes, and every page that shows a case reads its playbook: the
# spec of a text already read is shared, not parsed again (it is frozen; nothing mutates it).
@functools.lru_cache(maxsize=32)
def _parse_text(text: str, stored: bool) -> PlaybookSpec:
    document = _Document.read(text)
    data = document.data
    if not isinstance(data, dict):
        if data is None and not document.errors:
            document.fail(None, (), "the playbook is empty; it must be a mapping of fields")
        elif data is not None:
            document.fail(
                document.line_of(()),
                (),
                f"the playbook must be a mapping of fields (slug: ..., name: ..., steps: ...), "
                f"not {_describe(data)}",
            )
        raise PlaybookInvalid(document.errors)
    document.validate_schema()
    if document.errors:
        raise PlaybookInvalid(document.errors)
    document.check_rules(stored=stored)
    if document.errors:
        raise PlaybookInvalid(document.errors)
    return _build(data)


# --- reading ---------------------------------------------------------------------------------


def _decode(source: str | bytes) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if len(raw) > MAX_SOURCE_BYTES:
            raise PlaybookInvalid([_too_big(len(raw), "bytes")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            good = raw[: exc.start].decode("utf-8", errors="replace")
            raise PlaybookInvalid(
                [
                    PlaybookError(
                        _line_at(good, len(good)),
                        "",
                        f"the file is not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                        f"offset {exc.start}); save it as UTF-8",
                    )
                ]
            ) from None
    elif isinstance(source, str):
        text = source
        if len(text) > MAX_SOURCE_BYTES:
            raise PlaybookInvalid([_too_big(len(text), "characters")])
    else:
        raise PlaybookInvalid(
            [PlaybookError(None, "", f"expected YAML text, got {type(source).__name__}")]
        )
    bad = [
        PlaybookError(
            _line_at(text, m.start()),
            "",
            f"character U+{ord(m.group()):04X} is not allowed in YAML; remove it",
        )
        for m in itertools.islice(_NON_PRINTABLE.finditer(text), MAX_ERRORS)
    ]
    if bad:
        raise PlaybookInvalid(bad)
    return text


def _too_big(size: int, unit: str) -> PlaybookError:
    return PlaybookError(
        None, "", f"the playbook is {size} {unit} long; at most {MAX_SOURCE_BYTES} are allowed"
    )


def _line_at(text: str, position: int) -> int:
    """1-based line of text[position], counting line breaks the way YAML does."""
    return len(_YAML_LINE_BREAK.findall(text, 0, position)) + 1


def _node_line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def render_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"a {type(value).__name__} value"


class _Document:
    """The YAML as plain data, plus where each piece came from."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data: Any = None
        self.errors: list[PlaybookError] = []
        self.key_lines: dict[PathKey, int] = {}
        self.value_lines: dict[PathKey, int] = {}
        self.raw: dict[PathKey, str] = {}  # the source text of scalar values
        self.broken: set[PathKey] = set()  # values already reported as unreadable
        self._nodes = 0

    @classmethod
    def read(cls, text: str) -> _Document:
        doc = cls(text)
        loader = yaml.SafeLoader(text)
        try:
            try:
                root = loader.get_single_node()
            except yaml.MarkedYAMLError as exc:
                doc.fail(*_yaml_error(exc))
                return doc
            except yaml.YAMLError as exc:
                doc.fail(None, (), f"the YAML cannot be read: {exc}")
                return doc
            except RecursionError:
                doc.fail(None, (), f"the YAML is nested too deeply (at most {MAX_DEPTH} levels)")
                return doc
            if root is not None:
                doc.data = doc._read_node(loader, root, (), set())
        finally:
            loader.dispose()
        return doc

    def fail(self, line: int | None, path: PathKey, message: str) -> None:
        self.errors.append(PlaybookError(line, render_path(path), message))

    def line_of(self, path: PathKey) -> int | None:
        """Line where path is named (its key), else where its value starts, else its parent's."""
        probe = tuple(path)
        while True:
            line = self.key_lines.get(probe) or self.value_lines.get(probe)
            if line is not None or not probe:
                return line
            probe = probe[:-1]

    def _read_node(
        self, loader: yaml.SafeLoader, node: yaml.Node, path: PathKey, active: set[int]
    ) -> Any:
        self.value_lines[path] = _node_line(node)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            if self._nodes == MAX_NODES + 1:
                self.fail(_node_line(node), path, "the document has too many values or aliases")
            self.broken.add(path)
            return None
        if len(path) > MAX_DEPTH:
            self.fail(_node_line(node), path, f"nested too deeply (at most {MAX_DEPTH} levels)")
            self.broken.add(path)
            return None
        if id(node) in active:
            self.fail(_node_line(node), path, "an alias refers to its own parent (a loop)")
            self.broken.add(path)
            return None
        if isinstance(node, yaml.ScalarNode):
            self.raw[path] = str(node.value)
            try:
                value = loader.construct_object(node, deep=True)
            except Exception as exc:  # any constructor failure comes from the user's input
                problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
                self.fail(_node_line(node), path, f"cannot read {node.value!r}: {problem}")
                self.broken.add(path)
                return None
            if isinstance(value, str) and "\x00" in value:  # "\0" in YAML: no database keeps it
                self.fail(_node_line(node), path, "must not contain NUL characters")
                self.broken.add(path)
                return None
            return value
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return [
                self._read_node(loader, child, (*path, index), active)
                for index, child in enumerate(node.value)
            ]
        mapping: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = _node_line(key_node)
            if key_node.tag == _MERGE_TAG:
                self.fail(
                    key_line,
                    path,
                    "YAML merge keys ('<<') are not supported; write the fields out in full",
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_line, path, "a key must be plain text, not a list or a mapping")
                continue
            key = str(key_node.value)
            if key in first_seen:
                self.fail(
                    key_line,
                    (*path, key),
                    f"duplicate key {key!r}: it is already given on line {first_seen[key]}; "
                    f"a key may appear only once in a mapping",
                )
                continue
            first_seen[key] = key_line
            self.key_lines[(*path, key)] = key_line
            mapping[key] = self._read_node(loader, value_node, (*path, key), active)
        return mapping

    # --- schema ------------------------------------------------------------------------------

    def validate_schema(self) -> None:
        found: dict[PathKey, list[tuple[str, PlaybookError]]] = {}
        for error in _validator().iter_errors(self.data):
            path: PathKey = tuple(error.absolute_path)
            if any(path[:n] in self.broken for n in range(len(path) + 1)):
                continue
            for problem in self._explain(error, path):
                found.setdefault(path, []).append((str(error.validator), problem))
        for problems in found.values():
            # A wrong type makes the other complaints about the same value noise.
            if any(validator == "type" for validator, _ in problems):
                problems = [p for p in problems if p[0] == "type"]
            self.errors.extend(problem for _, problem in problems)

    def _explain(self, error: Any, path: PathKey) -> list[PlaybookError]:
        validator = error.validator
        value = error.validator_value
        instance = error.instance
        line = self.line_of(path)
        shown = self._show(path, instance)
        if validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            return [
                PlaybookError(
                    self.line_of((*path, key)),
                    render_path((*path, key)),
                    f"unknown field {key!r}{_did_you_mean(key, allowed)}; "
                    f"allowed fields: {', '.join(allowed)}",
                )
                for key in instance
                if key not in allowed
            ]
        if validator == "required":
            return [
                PlaybookError(line, render_path((*path, key)), f"missing required field {key!r}")
                for key in value
                if key not in instance
            ]
        if validator == "type":
            expected = _TYPE_NAMES.get(str(value), str(value))
            if instance is None:
                message = f"no value is given; expected {expected}"
            else:
                message = f"{shown} is not {expected}"
                raw = self.raw.get(path)
                if value == "string" and raw is not None:
                    message += f"; put it in quotes to use it as text: {json.dumps(raw)}"
                elif value == "array" and raw is not None:
                    message += f"; write it as a list: [{raw}]"
            return [PlaybookError(line, render_path(path), message)]
        if validator == "enum":
            options = [str(v) for v in value]
            hint = _did_you_mean(str(instance), options) if isinstance(instance, str) else ""
            message = f"{shown} is not allowed{hint}; use one of: {', '.join(options)}"
            return [PlaybookError(line, render_path(path), message)]
        if validator == "pattern":
            hint = _PATTERN_HINTS.get(str(value), f"must match the pattern {value}")
            message = "must not be blank" if hint == "must not be blank" else f"{shown}: {hint}"
            return [PlaybookError(line, render_path(path), message)]
        if validator == "minLength":
            message = "must not be empty"
        elif validator == "maxLength":
            message = f"is too long: at most {value} characters are allowed"
        elif validator == "minimum":
            message = f"{shown} is too small: the minimum is {value}"
        elif validator == "maximum":
            message = f"{shown} is too large: the maximum is {value}"
        elif validator == "minItems":
            message = f"must list at least {value} item{'s' if value != 1 else ''}"
        elif validator == "maxItems":
            message = f"lists {len(instance)} items: at most {value} are allowed"
        elif validator == "uniqueItems":
            message = f"lists {_first_duplicate(instance)!r} more than once"
        else:
            message = str(error.message)
        return [PlaybookError(line, render_path(path), message)]

    def _show(self, path: PathKey, instance: Any) -> str:
        raw = self.raw.get(path)
        if raw is not None:
            return repr(raw)
        return _describe(instance)

    # --- rules beyond the schema -------------------------------------------------------------

    def check_rules(self, *, stored: bool = False) -> None:
        data: dict[str, Any] = self.data
        if not _SLUG.fullmatch(data["slug"]):
            hint = _PATTERN_HINTS["^[a-z0-9]+(-[a-z0-9]+)*$"]
            self.fail(self.line_of(("slug",)), ("slug",), f"{data['slug']!r}: {hint}")
        fee_types = set(data["fee_types"])
        steps: list[dict[str, Any]] = data["steps"]
        index = self._check_steps(steps, fee_types)
        graph = self._check_dependencies(steps, index)
        self._check_cycles(graph, index)
        self._check_data_not_waiting_for_payment(steps, graph, index)
        self._check_about(steps, stored=stored)
        self._check_approval_policy(data["approval_policy"])
        self._check_seeds(data.get("seeds") or {}, fee_types)

    def _check_steps(self, steps: list[dict[str, Any]], fee_types: set[str]) -> dict[str, int]:
        """Check each step on its own; return the index of the first step with each key."""
        index: dict[str, int] = {}
        for i, step in enumerate(steps):
            key = step["key"]
            for name in ("key", "phase"):
                if not _STEP_KEY.fullmatch(step[name]):
                    where: PathKey = ("steps", i, name)
                    hint = _PATTERN_HINTS["^[a-z0-9_]+$"]
                    self.fail(self.line_of(where), where, f"{step[name]!r}: {hint}")
            if key in index:
                first = self.line_of(("steps", index[key]))
                self.fail(
                    self.line_of(("steps", i, "key")),
                    ("steps", i, "key"),
                    f"step key {key!r} is already used by the step on line {first}; "
                    f"step keys must be unique",
                )
            else:
                index[key] = i
            if step["owner_role"] not in OWNER_ROLES:
                self.fail(
                    self.line_of(("steps", i, "owner_role")),
                    ("steps", i, "owner_role"),
                    f"{step['owner_role']!r} cannot own a step (auditors are read-only); "
                    f"use one of: {', '.join(OWNER_ROLES)}",
                )
            self._check_fee_subset(step.get("fee_types"), fee_types, ("steps", i, "fee_types"))
            escalate = step.get("escalate", {})
            owner, managers = escalate.get("owner_after_days"), escalate.get("managers_after_days")
            if owner is not None and managers is not None and managers < owner:
                where = ("steps", i, "escalate", "managers_after_days")
                self.fail(
                    self.line_of(where),
                    where,
                    f"the managers are told after {managers} days, before the case owner "
                    f"({owner}): make managers_after_days at least {owner}",
                )
        return index

    def _check_dependencies(
        self, steps: list[dict[str, Any]], index: dict[str, int]
    ) -> dict[str, list[str]]:
        """Check every depends_on entry; return the graph of the valid ones."""
        graph: dict[str, list[str]] = {key: [] for key in index}
        for i, step in enumerate(steps):
            for j, dep in enumerate(step.get("depends_on", [])):
                where: PathKey = ("steps", i, "depends_on", j)
                if dep == step["key"]:
                    self.fail(self.line_of(where), where, f"step {dep!r} cannot depend on itself")
                elif dep not in index:
                    self.fail(
                        self.line_of(where),
                        where,
                        f"step {step['key']!r} depends on {dep!r}, but no step has that key"
                        f"{_did_you_mean(dep, list(index))}",
                    )
                elif index[step["key"]] == i:
                    graph[step["key"]].append(dep)
        return graph

    def _check_about(self, steps: list[dict[str, Any]], *, stored: bool) -> None:
        values = {
            ("handover_items", "kind"): HANDOVER_KINDS,
            ("access_grants", "direction"): ACCESS_DIRECTIONS,
            ("access_grants", "planned_action"): ACCESS_ACTIONS,
            ("data_dispositions", "action"): DATA_ACTIONS,
            ("settlements", "kind"): SETTLEMENT_KINDS,
        }
        for i, step in enumerate(steps):
            for j, entry in enumerate(step.get("about") or ()):
                register = entry["register"]
                for name, given in entry.items():
                    where: PathKey = ("steps", i, "about", j, name)
                    if name == "register":
                        continue
                    if name not in ABOUT_FILTERS[register]:
                        allowed = ", ".join(ABOUT_FILTERS[register]) or "nothing"
                        self.fail(
                            self.line_of(where),
                            where,
                            f"{register} cannot be narrowed by {name!r}; "
                            f"it can be narrowed by: {allowed}",
                        )
                        continue
                    options = values[(register, name)]
                    for k, value in enumerate(given):
                        if value not in options:
                            self.fail(
                                self.line_of((*where, k)),
                                (*where, k),
                                f"{value!r} is not a {name} of {register}"
                                f"{_did_you_mean(str(value), options)}; use one of: "
                                f"{', '.join(options)}",
                            )
            if stored or "client_ack" not in step.get("evidence", ()):
                continue
            if not any(s.register in ACKNOWLEDGED_IN_PORTAL for s in step_about(step)):
                where = ("steps", i, "evidence")
                self.fail(
                    self.line_of(where),
                    where,
                    f"step {step['key']!r} accepts client_ack, but the client acknowledges only "
                    f"deliverables and handover items in the portal and this step is about "
                    f"neither; add them to its 'about', or use 'file' for a signed letter",
                )

    def _check_approval_policy(self, policy: dict[str, Any]) -> None:
        for j, role in enumerate(policy["roles"]):
            if role not in APPROVER_ROLES:
                where: PathKey = ("approval_policy", "roles", j)
                self.fail(
                    self.line_of(where),
                    where,
                    f"{role!r} cannot approve a closure (auditors are read-only); "
                    f"use one of: {', '.join(APPROVER_ROLES)}",
                )

    def _check_seeds(self, seeds: dict[str, list[dict[str, Any]]], fee_types: set[str]) -> None:
        for register, items in seeds.items():
            for i, item in enumerate(items):
                where: PathKey = ("seeds", register, i)
                self._check_fee_subset(item.get("fee_types"), fee_types, (*where, "fee_types"))
                if (
                    register == "data_dispositions"
                    and item["action"] == "retain"
                    and not str(item.get("retention_basis", "")).strip()
                ):
                    self.fail(
                        self.line_of(where),
                        (*where, "retention_basis"),
                        f"data set {item['dataset']!r} is retained, so it needs a "
                        f"retention_basis: the law or contract clause that requires keeping it",
                    )

    def _check_fee_subset(self, given: list[str] | None, allowed: set[str], where: PathKey) -> None:
        if given is None:
            return
        extra = [fee for fee in given if fee not in allowed]
        if extra:
            self.fail(
                self.line_of(where),
                where,
                f"fee type{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} "
                f"not supported by this playbook; its fee_types are: {', '.join(sorted(allowed))}",
            )

    def _check_cycles(self, graph: dict[str, list[str]], index: dict[str, int]) -> None:
        reported: set[frozenset[str]] = set()
        state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
        for start in graph:
            if start in state:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            trail: list[str] = [start]
            state[start] = 1
            while stack:
                node, edge = stack[-1]
                if edge < len(graph[node]):
                    stack[-1] = (node, edge + 1)
                    nxt = graph[node][edge]
                    if state.get(nxt) == 1:
                        cycle = trail[trail.index(nxt) :]
                        if frozenset(cycle) not in reported:
                            reported.add(frozenset(cycle))
                            first = min(cycle, key=lambda k: index[k])
                            at = cycle.index(first)
                            ordered = [*cycle[at:], *cycle[:at], first]
                            where = ("steps", index[first], "depends_on")
                            self.fail(
                                self.line_of(where),
                                where,
                                "dependency cycle "
                                + " -> ".join(map(repr, ordered))
                                + ": none of these steps could ever start; remove one dependency",
                            )
                    elif nxt not in state:
                        state[nxt] = 1
                        stack.append((nxt, 0))
                        trail.append(nxt)
                else:
                    state[node] = 2
                    stack.pop()
                    trail.pop()

    def _check_data_not_waiting_for_payment(
        self, steps: list[dict[str, Any]], graph: dict[str, list[str]], index: dict[str, int]
    ) -> None:
        category = {key: steps[i].get("category", "general") for key, i in index.items()}
        for key, i in index.items():
            if category[key] not in DATA_CATEGORIES:
                continue
            came_from: dict[str, str | None] = {key: None}
            queue = deque([key])
            while queue:
                node = queue.popleft()
                if node != key and category[node] == "payment":
                    chain = [node]
                    while came_from[chain[-1]] is not None:
                        chain.append(came_from[chain[-1]])  # type: ignore[arg-type]
                    chain.reverse()  # key ... node
                    via = chain[1:-1]
                    through = f" (through {' -> '.join(map(repr, via))})" if via else ""
                    first_dep = chain[1]
                    j = steps[i]["depends_on"].index(first_dep)
                    where = ("steps", i, "depends_on", j)
                    self.fail(
                        self.line_of(where),
                        where,
                        f"step {key!r} ({category[key]}) waits for payment step {node!r}"
                        f"{through}: returning or deleting the client's data must never be "
                        f"conditioned on payment",
                    )
                    break
                for dep in graph[node]:
                    if dep not in came_from:
                        came_from[dep] = node
                        queue.append(dep)


@functools.cache
def _validator() -> Any:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int | None, PathKey, str]:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "the YAML cannot be read"
    message = f"YAML syntax error: {problem}"
    if exc.context and problem.startswith("but "):  # e.g. "expected a single document ..."
        message = f"YAML syntax error: {exc.context}, {problem}"
    elif exc.context and exc.context_mark is not None:
        message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
    elif exc.context:
        message += f" ({exc.context})"
    return (mark.line + 1 if mark is not None else None), (), message


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _first_duplicate(items: Any) -> Any:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return item
        seen.append(item)
    return None


# --- building --------------------------------------------------------------------------------


def _build(data: dict[str, Any]) -> PlaybookSpec:
    steps = tuple(
        StepSpec(
            key=step["key"],
            phase=step["phase"],
            title=step["title"].strip(),
            guidance=step.get("guidance", "").strip(),
            owner_role=step["owner_role"],
            due_anchor=step["due"]["from"],
            due_offset_days=int(step["due"]["offset_days"]),
            required=step.get("required", True),
            evidence=tuple(step.get("evidence", ())),
            depends_on=tuple(step.get("depends_on", ())),
            category=step.get("category", "general"),
            fee_types=tuple(step["fee_types"]) if "fee_types" in step else None,
            about=step_about(step),
            escalate_owner_days=step.get("escalate", {}).get("owner_after_days"),
            escalate_managers_days=step.get("escalate", {}).get("managers_after_days"),
        )
        for step in data["steps"]
    )
    given = data.get("seeds") or {}
    seeds: dict[str, tuple[dict[str, Any], ...]] = {}
    for register in SEED_REGISTERS:
        items = []
        for item in given.get(register, []):
            normalized: dict[str, Any] = {
                name: str(item.get(name, "")).strip() for name in SEED_FIELDS[register]
            }
            if "fee_types" in item:
                normalized["fee_types"] = list(item["fee_types"])
            items.append(normalized)
        seeds[register] = tuple(items)
    policy = data["approval_policy"]
    return PlaybookSpec(
        slug=data["slug"],
        name=data["name"].strip(),
        service_type=data["service_type"],
        description=data.get("description", "").strip(),
        fee_types=tuple(data["fee_types"]),
        steps=steps,
        seeds=seeds,
        approval_policy=ApprovalPolicy(
            min_approvers=int(policy["min_approvers"]), roles=tuple(policy["roles"])
        ),
    )
