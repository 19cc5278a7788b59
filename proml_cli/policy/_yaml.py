"""Stage 1: the YAML walk (safe composition, marks for every key, caps on size and depth)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from proml_cli.errors import PolicyError
from proml_cli.policy._common import (
    _MAP_TAG,
    _MAX_NODES,
    _MERGE_TAG,
    _SEQ_TAG,
    _STR_TAG,
    _TAG,
    _TIMESTAMP_TAG,
    _TYPED_SCALAR_TAGS,
    SUPPORTED_VERSION,
    _describe,
    _dotted,
    _KeyPath,
    _Mark,
    _one_line,
)

# --------------------------------------------------------------------------- stage 1: YAML


@dataclass
class _Tree:
    """Plain data of the document plus where each value and key sits."""

    source: str
    data: Any
    value_marks: dict[_KeyPath, _Mark]
    key_marks: dict[_KeyPath, _Mark]
    raw: dict[_KeyPath, str]
    end_marks: dict[_KeyPath, _Mark] = field(default_factory=dict)

    def fail(self, path: _KeyPath | None, mark: _Mark | None, reason: str) -> PolicyError:
        """Build the one-line error for ``path`` at ``mark``."""
        line, column = mark if mark is not None else (None, None)
        return PolicyError(
            _one_line(reason),
            path=_one_line(self.source),
            line=line,
            column=column,
            key=_one_line(_dotted(path)) if path else None,
        )

    def value_mark(self, path: _KeyPath) -> _Mark:
        """Where the value at ``path`` starts, or where its nearest present ancestor does."""
        if path in self.value_marks:
            return self.value_marks[path]
        return self.missing_mark(path)

    def key_mark(self, path: _KeyPath) -> _Mark:
        """Where the key of ``path`` starts, falling back to its value."""
        return self.key_marks.get(path) or self.value_mark(path)

    def missing_mark(self, path: _KeyPath) -> _Mark:
        """Where to point for a key that is absent: the key of its nearest present ancestor."""
        parent = path[:-1]
        while parent and parent not in self.value_marks:
            parent = parent[:-1]
        if parent in self.key_marks:
            return self.key_marks[parent]
        return self.value_marks.get(parent, (1, 1))

    def missing_order(self, path: _KeyPath) -> _Mark:
        """Where an absent key counts in document order: the end of its mapping.

        So a misspelt key inside the mapping is reported before the key it fails to supply.
        """
        parent = path[:-1]
        while parent and parent not in self.end_marks:
            parent = parent[:-1]
        return self.end_marks.get(parent, (1, 1))


def _mark_of(mark: yaml.Mark | None) -> _Mark:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


class _Walker:
    """Turns composed nodes into plain data, keeping marks and refusing what YAML lets slip."""

    def __init__(self, source: str) -> None:
        self.tree = _Tree(source, None, {}, {}, {})
        self.count = 0
        self.active: set[int] = set()
        # The stubs leave `resolve` untyped; it returns the implicit tag of a plain scalar.
        self.resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = (
            yaml.resolver.Resolver().resolve
        )
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, path: _KeyPath, mark: yaml.Mark | None, reason: str) -> PolicyError:
        """Build the error for ``path`` at a YAML mark."""
        return self.tree.fail(path, _mark_of(mark), reason)

    def walk(self, node: yaml.Node, path: _KeyPath) -> Any:
        """Return the plain value of ``node``, recording its mark under ``path``."""
        self.count += 1
        if self.count > _MAX_NODES:
            raise self.fail(path, node.start_mark, f"the policy has more than {_MAX_NODES} values")
        if id(node) in self.active:
            raise self.fail(path, node.start_mark, "an alias refers to a value that contains it")
        self.tree.value_marks[path] = _mark_of(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.fail(
                    path, node.start_mark, f"unsupported YAML tag {_short_tag(node.tag)}"
                )
            self.active.add(id(node))
            items = [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            self.active.discard(id(node))
            return items
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        raise self.fail(path, node.start_mark, "unsupported YAML node")

    def _mapping(self, node: yaml.MappingNode, path: _KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self.fail(path, node.start_mark, f"unsupported YAML tag {_short_tag(node.tag)}")
        self.active.add(id(node))
        self.tree.end_marks[path] = _mark_of(node.end_mark)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(
                    path, key_node.start_mark, "a key must be text, not a list or mapping"
                )
            if key_node.tag == _MERGE_TAG:
                raise self.fail(
                    path, key_node.start_mark, "merge keys ('<<') are not supported; use an alias"
                )
            self._check_scalar_tag(key_node, path)
            # Keys are names, always read as text: `1:` or `on:` mean the names "1" and "on".
            key: str = key_node.value
            key_path = (*path, key)
            if key_path in self.tree.key_marks:
                first = self.tree.key_marks[key_path]
                raise self.fail(
                    key_path,
                    key_node.start_mark,
                    f"duplicate key (first defined at line {first[0]})",
                )
            self.tree.key_marks[key_path] = _mark_of(key_node.start_mark)
            result[key] = self.walk(value_node, key_path)
        self.active.discard(id(node))
        return result

    def _check_scalar_tag(self, node: yaml.ScalarNode, path: _KeyPath) -> str:
        implicit = (
            self.resolve(yaml.ScalarNode, node.value, (True, False))
            if node.style is None
            else _STR_TAG
        )
        if node.tag not in (implicit, _STR_TAG):
            raise self.fail(path, node.start_mark, f"unsupported YAML tag {_short_tag(node.tag)}")
        return str(node.tag)

    def _scalar(self, node: yaml.ScalarNode, path: _KeyPath) -> Any:
        tag = self._check_scalar_tag(node, path)
        self.tree.raw[path] = node.value
        if tag in _TYPED_SCALAR_TAGS:
            return self.constructor.construct_object(node)
        # Text, and timestamps too: no key takes a date, and dates read as text are kinder.
        if tag in (_STR_TAG, _TIMESTAMP_TAG):
            return str(node.value)
        raise self.fail(path, node.start_mark, f"unsupported YAML tag {_short_tag(tag)}")


_TOO_DEEP = "invalid YAML: values are nested too deeply"


def _compose(text: str, source: str) -> _Tree:
    """Compose ``text`` and walk it to plain data; YAML-level problems become PolicyError."""
    where = _one_line(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line, column = _mark_of(exc.problem_mark or exc.context_mark)
        problem, context = exc.problem, exc.context
        if problem and context and not context.startswith("while"):
            reason = f"invalid YAML: {context}, {problem}"
        elif problem and context:
            reason = f"invalid YAML: {problem} ({context})"
        else:
            reason = f"invalid YAML: {problem or context or 'syntax error'}"
        raise PolicyError(_one_line(reason), path=where, line=line, column=column) from exc
    except yaml.reader.ReaderError as exc:
        head = text[: int(exc.position)]
        raise PolicyError(
            f"invalid YAML: the character U+{int(exc.character):04X} is not allowed",
            path=where,
            line=head.count("\n") + 1,
            column=len(head) - (head.rfind("\n") + 1) + 1,
        ) from exc
    except RecursionError as exc:
        raise PolicyError(_TOO_DEEP, path=where) from exc
    walker = _Walker(source)
    if root is None:
        raise PolicyError(
            "the policy is empty; it needs at least 'version: 1' and 'project: NAME'", path=where
        )
    try:
        walker.tree.data = walker.walk(root, ())
    except RecursionError as exc:
        raise PolicyError(_TOO_DEEP, path=where) from exc
    if not isinstance(walker.tree.data, dict):
        raise walker.tree.fail(
            None,
            walker.tree.value_marks[()],
            f"the policy must be a mapping of keys, got {_describe(walker.tree.data, None)}",
        )
    return walker.tree


def _check_version(tree: _Tree) -> None:
    """Check ``version`` first: it decides which schema the rest is read with."""
    if "version" not in tree.data:
        raise tree.fail(
            ("version",),
            tree.value_marks[()],
            f"required key is missing; start the policy with 'version: {SUPPORTED_VERSION}'",
        )
    value = tree.data["version"]
    mark = tree.value_marks[("version",)]
    if type(value) is not int:
        raw = tree.raw.get(("version",))
        raise tree.fail(
            ("version",),
            mark,
            f"expected the integer {SUPPORTED_VERSION}, got {_describe(value, raw)}",
        )
    if value != SUPPORTED_VERSION:
        raise tree.fail(
            ("version",),
            mark,
            f"unsupported policy version {value}; this proml reads version "
            f"{SUPPORTED_VERSION} only",
        )
