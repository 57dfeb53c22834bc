"""Read every `domains/<domain>/domain.yaml` safely, validating each file on its own.

A descriptor is input written by a domain team, so it is read within bounds before anything is
built from it. Every way a file can be bad is a `Problem` (file, line, field, rule) and no
descriptor; the other domains are unaffected:

- **size** (`descriptor-size`): at most `MAX_BYTES` are read; a larger file is refused without
  reading the rest.
- **encoding** (`utf-8`): the file must be UTF-8; the first byte that is not is named with its line.
- **duplicate keys** (`duplicate-key`), anywhere in the file: YAML requires keys to be unique, and
  PyYAML would silently keep the last one, so `classification: pii` followed by
  `classification: public` would serve the column unmasked. The platform refuses to guess.
- **nesting** (`nesting-depth`): at most `MAX_DEPTH` levels of mappings and lists (libyaml stops at
  1000, deep enough to overflow Python's recursion in every library that walks the result).
- **aliases** (`alias-expansion`): anchors and aliases are allowed, because they are ordinary YAML
  that teams use to repeat an access block or a value set, but the document they expand to is
  bounded: at most `MAX_NODES` nodes and `MAX_DEPTH` levels once every alias is expanded, and an
  alias may not refer to the collection that contains it. An alias bomb (ten lines that expand
  to billions of nodes) is refused from its parser events, linear in the file's size, before any
  Python object is built; refusing aliases outright would be as safe but would reject valid files.
- **YAML syntax** (`yaml`) and values YAML cannot build (a date like `2024-13-45`), with their line.

Then the pydantic model (`mesh_platform.descriptor.model`) validates the document, and each of its
errors is located at the line of the field it names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh_platform.descriptor.model import Descriptor
from mesh_platform.descriptor.problems import Problem
from mesh_platform.text import one_line

DESCRIPTOR_FILE = "domain.yaml"
MAX_BYTES = 256 * 1024  # the shipped descriptors are 2-8 KB
MAX_DEPTH = 32  # a descriptor needs 6 (products[].expectations[].kwargs.value_set[])
MAX_NODES = 20_000  # after expanding every alias; the shipped descriptors have 150-300

# libyaml when the platform has it: a descriptor is read at every step of every run
LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MERGE_TAG = "tag:yaml.org,2002:merge"

Loc = tuple[Any, ...]


class _DescriptorLoader(LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, with values YAML cannot build (`2024-13-45`, a 5000-digit integer) reported
    at their line like any other YAML error."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.tag.rsplit(':', 1)[-1]} value: {exc}", node.start_mark
            ) from exc


@dataclass
class LoadedDescriptor:
    """One descriptor file read: the descriptor (None if it cannot be used), its problems, and the
    line of each field (for problems found later, by the rules across descriptors)."""

    descriptor: Descriptor | None
    problems: list[Problem]
    line_of: Callable[[str], int | None] = field(default=lambda _field: None)


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _loc_of(field_path: str) -> Loc:
    """`products[1].columns[0]` -> ("products", 1, "columns", 0)."""
    return tuple(int(i) if i else name for name, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field_path))


def _key_matches(key: yaml.Node, part: Any) -> bool:
    return isinstance(key, yaml.ScalarNode) and (key.value == part or key.value == str(part))


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its closest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if _key_matches(k, part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


_RULES = {
    "missing": "required",
    "string_too_short": "not-empty",
    "string_pattern_mismatch": "name-format",
    "extra_forbidden": "unknown-key",
    "too_short": "not-empty",
    "literal_error": "allowed-values",
}


def _rule_for(error: Any) -> str:
    message = str(error.get("msg", ""))
    if "expectation type" in message:
        return "expectation-type"
    if "owner" in message:
        return "owner-format"
    return _RULES.get(error["type"], error["type"].replace("_", "-"))


@dataclass
class _Collection:
    """A mapping or list being read, in `_check_events`."""

    kind: str  # "map" | "seq"
    anchor: str | None
    nodes: int = 1  # nodes in it, aliases expanded
    height: int = 1  # levels of collections, itself included
    children: int = 0  # for a mapping: keys and values
    key: Any = None


@dataclass
class _Bound:
    rule: str
    message: str
    line: int
    loc: Loc


def _loc(stack: list[_Collection]) -> Loc:
    """Where the next node of the innermost collection goes."""
    loc: list[Any] = []
    for collection in stack:
        if collection.kind == "seq":
            loc.append(collection.children)
        elif collection.children % 2:  # a mapping's value
            loc.append(collection.key)
        else:
            break
    return tuple(loc)


def _check_events(text: str) -> _Bound | None:
    """Nesting and alias expansion, from libyaml's parser events: nothing is composed or built, and
    the work stops at the first event past a bound."""
    stack: list[_Collection] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height) of what it names
    total = 0
    for event in yaml.parse(text, Loader=LOADER):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(stack) + 1 > MAX_DEPTH:
                return _Bound("nesting-depth", f"nested deeper than {MAX_DEPTH} levels", line, _loc(stack))
            total += 1
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            stack.append(_Collection(kind, event.anchor))
            continue
        if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.nodes, done.height)
            nodes, height, value = done.nodes, done.height, None
        elif isinstance(event, yaml.AliasEvent):
            if any(c.anchor == event.anchor for c in stack):
                return _Bound(
                    "alias-expansion",
                    f"alias *{event.anchor} refers to a collection that contains it",
                    line,
                    _loc(stack),
                )
            nodes, height = anchors.get(event.anchor, (1, 0))  # an undefined alias is the composer's error
            if len(stack) + height > MAX_DEPTH:
                message = f"alias *{event.anchor} expands to more than {MAX_DEPTH} levels of nesting"
                return _Bound("alias-expansion", message, line, _loc(stack))
            total += nodes
            if total > MAX_NODES:
                message = f"aliases expand the document past {MAX_NODES:,} nodes (at *{event.anchor})"
                return _Bound("alias-expansion", message, line, _loc(stack))
            value = None
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            if "\x00" in event.value:  # written as "\0" or "\u0000": no file, name, code or SQL holds one
                return _Bound("nul-character", "a value holds a NUL character (\\0)", line, _loc(stack))
            nodes, height, value = 1, 0, event.value
        else:
            continue
        if total > MAX_NODES:
            return _Bound("descriptor-size", f"more than {MAX_NODES:,} values", line, _loc(stack))
        if stack:
            parent = stack[-1]
            parent.nodes += nodes
            parent.height = max(parent.height, height + 1)
            if parent.kind == "map" and parent.children % 2 == 0:
                parent.key = value
            parent.children += 1
    return None


def _duplicate_keys(loader: Any, root: yaml.Node) -> list[tuple[Loc, int, int]]:
    """Every key that appears twice in one mapping: (its location, its line, the first one's line).
    Keys compare as YAML builds them (`1` and `01` are the same integer). Each node is visited once,
    however many aliases refer to it."""
    found, seen = [], set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(child, (*loc, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:  # `<<: *defaults`: keys given here override merged ones
                    stack.append((value_node, loc))
                    continue
                key = _key_identity(loader, key_node)
                line = key_node.start_mark.line + 1
                if key in first:
                    found.append(((*loc, key[1]), line, first[key]))
                else:
                    first[key] = line
                stack.append((value_node, (*loc, key[1])))
    return sorted(found, key=lambda f: f[1])


def _key_identity(loader: Any, node: yaml.Node) -> tuple[str, Any]:
    if not isinstance(node, yaml.ScalarNode):
        return ("node", id(node))
    try:
        value = loader.construct_object(node)
        hash(value)
    except (yaml.YAMLError, TypeError):
        return (node.tag, node.value)
    return ("value", value)


def _decode(data: bytes, rel: str, domain: str, what: str = "descriptor") -> tuple[str | None, list[Problem]]:
    if len(data) > MAX_BYTES:
        line = data[:MAX_BYTES].count(b"\n") + 1
        message = f"the {what} is larger than {MAX_BYTES // 1024} KiB; nothing past that is read"
        return None, [Problem(rel, "", "descriptor-size", message, line, domain)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end].hex(" ")
        message = f"not UTF-8: byte(s) {bad} at line {line}, column {column}; save the file as UTF-8"
        return None, [Problem(rel, "", "utf-8", message, line, domain)]


def _read(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(MAX_BYTES + 1)


def _yaml_problem(exc: yaml.YAMLError, text: str, rel: str, domain: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        message = f"malformed YAML: character U+{code:04X} is not allowed ({exc.reason})"
        return Problem(rel, "", "yaml", message, line, domain)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    detail = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"malformed YAML: {detail}" + (f" ({context})" if context else "")
    return Problem(rel, "", "yaml", one_line(message), mark.line + 1 if mark else 1, domain)


def _parse(text: str, rel: str, domain: str, what: str = "descriptor") -> tuple[Any, yaml.Node | None, list[Problem]]:
    """The document and its node tree, or the problems that keep it from being used."""
    node: yaml.Node | None = None
    try:
        bound = _check_events(text)
        if bound is not None:
            return None, None, [Problem(rel, _field_path(bound.loc), bound.rule, bound.message, bound.line, domain)]
        loader = _DescriptorLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None, [Problem(rel, "", "yaml", f"the {what} is empty", 1, domain)]
            duplicates = _duplicate_keys(loader, node)
            if duplicates:
                return (
                    None,
                    node,
                    [
                        Problem(
                            rel,
                            _field_path(loc),
                            "duplicate-key",
                            f"key {loc[-1]!r} is given twice in one mapping (first at line {first}); "
                            f"a {what} is refused rather than one of them silently used",
                            line,
                            domain,
                        )
                        for loc, line, first in duplicates
                    ],
                )
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:  # with the node tree when it was composed (a value YAML cannot build)
        return None, node, [_yaml_problem(exc, text, rel, domain)]
    return data, node, []


def _validate(data: Any, node: yaml.Node | None, rel: str, domain: str) -> tuple[Descriptor | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [
            Problem(rel, "", "yaml", "the descriptor must be a YAML mapping", _line_of(node, ()) or 1, domain)
        ]
    try:
        descriptor = Descriptor.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(Problem(rel, _field_path(loc), _rule_for(error), message, _line_of(node, loc), domain))
        return None, problems
    if descriptor.domain != domain:
        message = f"domain {descriptor.domain!r} must equal its folder name {domain!r}"
        return descriptor, [
            Problem(rel, "domain", "domain-matches-folder", message, _line_of(node, ("domain",)), domain)
        ]
    return descriptor, []


def _loc_at(node: yaml.Node, line: int, loc: Loc = ()) -> Loc | None:
    """Where the scalar value on `line` is (e.g. ("products", 2, "sunset")), if one is."""
    if isinstance(node, yaml.ScalarNode):
        return loc if node.start_mark.line + 1 == line else None
    children: list[tuple[Any, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        children = [(k.value, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
    elif isinstance(node, yaml.SequenceNode):
        children = list(enumerate(node.value))
    for part, child in children:
        if child.start_mark.line + 1 <= line <= child.end_mark.line + 1:
            found = _loc_at(child, line, (*loc, part))
            if found is not None:
                return found
    return None


def _at_field(problem: Problem, node: yaml.Node | None) -> Problem:
    """A value YAML cannot build (`sunset: 2027-13-45`) named by its key, found from its line."""
    if problem.field or problem.rule != "yaml" or node is None or problem.line is None:
        return problem
    loc = _loc_at(node, problem.line)
    return replace(problem, field=_field_path(loc)) if loc else problem


def read_descriptor(path: Path, rel: str) -> LoadedDescriptor:
    """Read, bound, parse and validate one descriptor file."""
    domain = path.parent.name
    try:
        raw = _read(path)
    except OSError as exc:
        return LoadedDescriptor(None, [Problem(rel, "", "readable", f"cannot read the descriptor: {exc}", 1, domain)])
    text, problems = _decode(raw, rel, domain)
    if text is None:
        return LoadedDescriptor(None, problems)
    data, node, problems = _parse(text, rel, domain)
    problems = [_at_field(p, node) for p in problems]
    if problems:  # libyaml places an error at the end of a file without a final newline on the line after it
        last = text.count("\n") + 1
        return LoadedDescriptor(None, [replace(p, line=min(p.line or 1, last)) for p in problems])
    descriptor, problems = _validate(data, node, rel, domain)
    return LoadedDescriptor(descriptor, problems, lambda field_path: _line_of(node, _loc_of(field_path)))


@dataclass
class YamlDocument:
    """A YAML file read within the descriptors' bounds: its data (None if it cannot be used), its
    problems, and the line of each field."""

    data: Any
    problems: list[Problem]
    node: yaml.Node | None = None

    def line_of(self, field_path: str) -> int | None:
        """The line of `field_path` (`schema[0].properties[2].name`) or of its closest existing parent."""
        return _line_of(self.node, _loc_of(field_path))


def read_yaml(path: Path, rel: str, what: str) -> YamlDocument:
    """Read, bound and parse a YAML file that is not a descriptor (`what` names it in problems), with
    the same limits: size, UTF-8, nesting, alias expansion, duplicate keys."""
    try:
        raw = _read(path)
    except OSError as exc:
        return YamlDocument(None, [Problem(rel, "", "readable", f"cannot read the {what}: {exc.strerror or exc}", 1)])
    text, problems = _decode(raw, rel, "", what)
    if text is None:
        return YamlDocument(None, problems)
    data, node, problems = _parse(text, rel, "", what)
    if problems:
        last = text.count("\n") + 1
        return YamlDocument(None, [replace(p, line=min(p.line or 1, last)) for p in problems], node)
    return YamlDocument(data, [], node)
