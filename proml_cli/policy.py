"""The capture policy (``proml.yaml``): its schema, loader, validator and resolved, frozen model."""

from __future__ import annotations

import difflib
import hashlib
import importlib.resources
import json
import posixpath
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from proml_cli.errors import InputError, PolicyError
from proml_cli.suggest import did_you_mean

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_ROLES",
    "MAX_POLICY_BYTES",
    "MAX_ROLES",
    "MAX_STATES",
    "NAME_MAX_BYTES",
    "SUPPORTED_VERSION",
    "TEMPLATE_PATH",
    "Artefact",
    "ChainConfig",
    "Kind",
    "Policy",
    "Step",
    "StorageConfig",
    "Transition",
    "kind_fingerprint",
    "load_policy",
    "name_problem",
    "parse_policy",
    "render_template",
]

SUPPORTED_VERSION = 1
# Names travel to the contract as bytes32, state sets as a 64-bit mask and role ids as uint8.
NAME_MAX_BYTES = 32
MAX_STATES = 64
MAX_ROLES = 128  # the ledger contract keeps role membership in a 128-bit mask
# A policy is a hand-written file of a few KiB; the caps bound what a hostile file can cost.
MAX_POLICY_BYTES = 1 << 20
_MAX_NODES = 100_000

DEFAULT_ROLES: tuple[str, ...] = ("data-admin", "developer", "verifier", "auditor", "operator")

TEMPLATE_PATH: Traversable = importlib.resources.files("proml_cli") / "templates" / "proml.yaml"
_TEMPLATE_PROJECT = "my-project"
#: Seconds to wait for a network chain's or IPFS node's answer (``chain.timeout`` /
#: ``storage.timeout``): a hung backend then fails a command with exit 3 within 30 s (the
#: one wait plus start-up, measured at 34-37 s with a 30 s wait on 2 busy cores).
DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 3600.0

_NAME_CHARS = re.compile(r"[a-z0-9._-]*")
_URL_SCHEMES_CHAIN = ("http", "https", "ws", "wss")
_URL_SCHEMES_IPFS = ("http", "https")
_LIST_LIMIT = 12

_KeyPath: TypeAlias = tuple[str | int, ...]
_Mark: TypeAlias = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"
_TIMESTAMP_TAG = _TAG + "timestamp"
_TYPED_SCALAR_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float"))


# --------------------------------------------------------------------------- resolved model


@dataclass(frozen=True)
class ChainConfig:
    """Where the project's contract lives.

    Attributes:
        backend: ``embedded`` (an in-process EVM under ``.proml/``) or ``rpc``.
        url: the JSON-RPC endpoint; set exactly when ``backend`` is ``rpc``.
        confirmations: blocks to wait for after a transaction (the embedded chain ignores it).
        timeout: seconds to wait for a network chain's answer before it counts as unreachable.
    """

    backend: Literal["embedded", "rpc"] = "embedded"
    url: str | None = None
    confirmations: int = 1
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class StorageConfig:
    """Where artefact bytes and provenance records are stored.

    Attributes:
        backend: ``embedded`` (a local block store under ``.proml/``) or ``ipfs``.
        ipfs: the Kubo RPC API URL; set exactly when ``backend`` is ``ipfs``.
        cid_version: the CID version to compute and print (0 or 1).
        timeout: seconds to wait for an IPFS node's answer before it counts as unreachable.
    """

    backend: Literal["embedded", "ipfs"] = "embedded"
    ipfs: str | None = None
    cid_version: int = 1
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Transition:
    """A named move of a version from one of ``sources`` to ``target``, allowed to ``roles``."""

    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """A state machine every version of an artefact of this kind follows.

    Attributes:
        name: the kind's name, e.g. ``dataset``.
        states: every state, in declaration order (the order is part of the kind's identity).
        initial: the state a newly registered version enters.
        register: roles allowed to register a new version.
        consumable: states ``verify`` and ``uses`` accept when no state is listed.
        transitions: transition name to :class:`Transition`, in declaration order.
    """

    name: str
    states: tuple[str, ...]
    initial: str
    register: tuple[str, ...]
    consumable: tuple[str, ...]
    transitions: Mapping[str, Transition] = field(hash=False)

    def __post_init__(self) -> None:
        _freeze(self, "transitions")


@dataclass(frozen=True)
class Artefact:
    """A named ML asset of the project.

    Attributes:
        name: the artefact's name.
        kind: the name of its kind.
        path: its file or directory, POSIX, relative to the policy's directory and normalised.
        description: free text, or None.
        allow_symlinks: whether capture may follow symbolic links inside it.
    """

    name: str
    kind: str
    path: str
    description: str | None = None
    allow_symlinks: bool = False


@dataclass(frozen=True)
class Step:
    """What proml does around one wrapped command.

    Attributes:
        name: the step's name.
        command: the tokens a wrapped command's argv must start with.
        uses: input artefact to the states it must be in (already resolved: never empty).
        produces: artefacts whose new versions this step registers.
        fires: artefact to the transition fired on success (on the produced version, or on the
            version used).
        params: file globs captured by digest into the record.
        metrics: file globs captured by digest into the record.
        capture_git: record the git commit and dirty flag.
        capture_environment: record the environment summary.
    """

    name: str
    command: tuple[str, ...]
    uses: Mapping[str, tuple[str, ...]] = field(hash=False)
    produces: tuple[str, ...]
    fires: Mapping[str, str] = field(hash=False)
    params: tuple[str, ...]
    metrics: tuple[str, ...]
    capture_git: bool = True
    capture_environment: bool = True

    def __post_init__(self) -> None:
        _freeze(self, "uses", "fires")


@dataclass(frozen=True)
class Policy:
    """A validated capture policy with every default resolved.

    Attributes:
        source: the policy's path as given, used in messages.
        root: the absolute directory artefact paths are relative to.
        digest: ``sha256:<hex>`` of the policy's bytes, recorded in every provenance record.
        project: the project's name.
        chain: the chain backend.
        storage: the content backend.
        roles: every role, declared ones first, then those the default kinds need.
        kinds: every kind: the defaults, with the policy's own added or overriding by name.
        artefacts: artefact name to :class:`Artefact`, in document order.
        steps: step name to :class:`Step`, in document order.
    """

    source: str
    root: Path
    digest: str
    project: str
    chain: ChainConfig
    storage: StorageConfig
    roles: tuple[str, ...]
    kinds: Mapping[str, Kind] = field(hash=False)
    artefacts: Mapping[str, Artefact] = field(hash=False)
    steps: Mapping[str, Step] = field(hash=False)

    def __post_init__(self) -> None:
        _freeze(self, "kinds", "artefacts", "steps")

    def artefact(self, name: str) -> Artefact:
        """Return the artefact called ``name``.

        Raises:
            InputError: the policy declares no such artefact.
        """
        found = self.artefacts.get(name)
        if found is None:
            raise InputError(
                _one_line(
                    f"unknown artefact {_q(name)} in {self.source}"
                    + did_you_mean(name, self.artefacts)
                ),
                hint=_one_line(f"artefacts: {_listing(self.artefacts) or '(none declared)'}"),
            )
        return found

    def kind_of(self, artefact: str) -> Kind:
        """Return the kind of the artefact called ``artefact``.

        Raises:
            InputError: the policy declares no such artefact.
        """
        return self.kinds[self.artefact(artefact).kind]

    def artefact_path(self, name: str) -> Path:
        """Return the absolute path of artefact ``name`` (lexical: symlinks are not resolved).

        Raises:
            InputError: the policy declares no such artefact.
        """
        return self.root.joinpath(*self.artefact(name).path.split("/"))

    def match_step(self, argv: Sequence[str], name: str | None = None) -> Step:
        """Return the step for a wrapped command.

        With ``name``, the step of that name. Otherwise the step whose command tokens are the
        longest prefix of ``argv`` (tokens compare exactly: ``python3`` is not ``python``).

        Raises:
            InputError: no such step, an empty ``argv``, or no step matches ``argv``.
        """
        if name is not None:
            step = self.steps.get(name)
            if step is None:
                raise InputError(
                    _one_line(
                        f"unknown step {_q(name)} in {self.source}" + did_you_mean(name, self.steps)
                    ),
                    hint=self._steps_hint(),
                )
            return step
        args = tuple(argv)
        if not args:
            raise InputError("no command to run", hint="put the command after `--`")
        best: Step | None = None
        for step in self.steps.values():
            size = len(step.command)
            if args[:size] == step.command and (best is None or size > len(best.command)):
                best = step
        if best is None:
            raise InputError(
                _one_line(f"no step in {self.source} matches the command {shlex.join(args)}"),
                hint=self._steps_hint(),
            )
        return best

    def _steps_hint(self) -> str:
        if not self.steps:
            return _one_line(f"declare a step for this command in {self.source}")
        listed = ", ".join(f"{s.name} ({shlex.join(s.command)})" for s in self.steps.values())
        return _one_line(f"steps: {listed}; or choose one with --step NAME")


def _freeze(obj: object, *names: str) -> None:
    """Replace mapping fields with read-only copies, so no caller's dict is shared or mutated."""
    for name in names:
        object.__setattr__(obj, name, MappingProxyType(dict(getattr(obj, name))))


def _transitions(*items: Transition) -> Mapping[str, Transition]:
    return MappingProxyType({t.name: t for t in items})


DEFAULT_KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "dataset": Kind(
            name="dataset",
            states=("raw", "validated", "rejected", "deprecated"),
            initial="raw",
            register=("data-admin", "developer"),
            consumable=("validated",),
            transitions=_transitions(
                Transition("validate", ("raw",), "validated", ("data-admin",)),
                Transition("reject", ("raw", "validated"), "rejected", ("data-admin",)),
                Transition("deprecate", ("validated",), "deprecated", ("data-admin",)),
            ),
        ),
        "model": Kind(
            name="model",
            states=("trained", "evaluated", "approved", "rejected", "revoked"),
            initial="trained",
            register=("developer",),
            consumable=("approved",),
            transitions=_transitions(
                Transition("evaluate", ("trained",), "evaluated", ("developer", "verifier")),
                Transition("approve", ("evaluated",), "approved", ("verifier",)),
                Transition("reject", ("trained", "evaluated"), "rejected", ("verifier",)),
                Transition("revoke", ("approved",), "revoked", ("verifier", "auditor")),
            ),
        ),
    }
)


def kind_fingerprint(kind: Kind) -> str:
    """Return ``sha256:<hex>`` of a kind's canonical JSON, to compare it with the chain's.

    State order counts (it fixes the on-chain state numbers); the order of role lists, source
    lists, consumable states and transitions does not.
    """
    doc = {
        "format": "proml.kind/1",
        "name": kind.name,
        "states": list(kind.states),
        "initial": kind.initial,
        "register": sorted(set(kind.register)),
        "consumable": sorted(set(kind.consumable)),
        "transitions": {
            t.name: {"from": sorted(set(t.sources)), "to": t.target, "roles": sorted(set(t.roles))}
            for t in kind.transitions.values()
        },
    }
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(data.encode("ascii")).hexdigest()


def name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a project, role, kind, state, artefact or step, or None."""
    if not name:
        return "it is empty"
    if not name.isascii():
        return "it is not ASCII"
    if len(name) > NAME_MAX_BYTES:
        return f"it is {len(name)} bytes long, at most {NAME_MAX_BYTES} fit the chain's bytes32"
    if any(c.isupper() for c in name):
        return "it has uppercase letters"
    if not (name[0].isdigit() or "a" <= name[0] <= "z"):
        return "it must start with a lowercase letter or a digit"
    if not _NAME_CHARS.fullmatch(name):
        bad = next(c for c in name if not _NAME_CHARS.fullmatch(c))
        return f"it contains {bad!r}; names use only a-z, 0-9, '.', '_' and '-'"
    return None


def render_template(project: str) -> str:
    """Return the packaged policy template with its project name set to ``project``.

    Raises:
        InputError: ``project`` is not a valid name.
    """
    problem = name_problem(project)
    if problem is not None:
        raise InputError(_one_line(f"invalid project name {_q(project)}: {problem}"))
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    return re.sub(
        rf"^project: {re.escape(_TEMPLATE_PROJECT)}\b",
        lambda _: f"project: {project}",
        text,
        count=1,
        flags=re.MULTILINE,
    )


# --------------------------------------------------------------------------- loading


def load_policy(path: Path, *, source: str | None = None) -> Policy:
    """Read, parse and validate the policy file at ``path``.

    Args:
        path: the policy file; its directory becomes :attr:`Policy.root`.
        source: how to name the file in messages; defaults to ``path`` as given.

    Raises:
        PolicyError: the file cannot be read, is not UTF-8 or breaks a rule; the message is
            one line, ``SOURCE:LINE:COL: dotted.key: reason``.
    """
    where = str(path) if source is None else source
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError as exc:
        raise PolicyError(
            "no such file", path=_one_line(where), hint="run `proml init` to create one"
        ) from exc
    except OSError as exc:
        raise PolicyError(
            _one_line(f"cannot read the policy: {exc.strerror or exc}"), path=_one_line(where)
        ) from exc
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"the policy is larger than {MAX_POLICY_BYTES} bytes", path=_one_line(where)
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n") + 1
        column = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise PolicyError(
            f"the policy is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            path=_one_line(where),
            line=line,
            column=column,
        ) from exc
    return _parse(text, data, where, path.absolute().parent.resolve())


def parse_policy(text: str, *, source: str = "proml.yaml", root: Path) -> Policy:
    """Parse and validate policy text.

    Args:
        text: the YAML text.
        source: how to name the text in messages.
        root: the directory artefact paths are relative to.

    Raises:
        PolicyError: the text breaks a rule; the message is one line,
            ``SOURCE:LINE:COL: dotted.key: reason``.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"the policy is larger than {MAX_POLICY_BYTES} bytes", path=_one_line(source)
        )
    return _parse(text, data, source, root.resolve())


def _parse(text: str, data: bytes, source: str, root: Path) -> Policy:
    """Run every stage and build the policy; stages run in order, each reports its first error."""
    tree = _compose(text, source)
    _check_version(tree)
    doc = _validate_schema(tree)
    checker = _Checker(tree, doc)
    checker.run()
    return _build(
        doc,
        roles=checker.roles,
        kinds=checker.kinds,
        source=source,
        root=root,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
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


# --------------------------------------------------------------------------- stage 2: schema


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "name", "invalid name {name}: {problem}", {"name": _q(value), "problem": problem}
        )
    return value


def _split_command(value: object) -> object:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "command", "cannot split the command: {why}", {"why": str(exc).lower()}
            ) from exc
    if isinstance(value, list):
        return value
    raise PydanticCustomError("command_type", "expected a command string or a list of tokens")


def _check_command(tokens: list[str]) -> list[str]:
    if not tokens:
        raise PydanticCustomError("command", "the command is empty")
    if not tokens[0]:
        raise PydanticCustomError("command", "the command's first token (the program) is empty")
    return tokens


def _check_cid_version(value: int) -> int:
    if value not in (0, 1):
        raise PydanticCustomError("cid_version", "expected 0 or 1, got {value}", {"value": value})
    return value


_Name = Annotated[str, AfterValidator(_check_name)]
_Command = Annotated[list[str], BeforeValidator(_split_command), AfterValidator(_check_command)]


class _Doc(BaseModel):
    """Schema base: strict types (no "1" for 1), no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _ChainDoc(_Doc):
    backend: Literal["embedded", "rpc"] = "embedded"
    url: str | None = None
    confirmations: Annotated[int, Field(ge=0)] = 1
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT)] = DEFAULT_TIMEOUT


class _StorageDoc(_Doc):
    backend: Literal["embedded", "ipfs"] = "embedded"
    ipfs: str | None = None
    cid_version: Annotated[int, AfterValidator(_check_cid_version)] = 1
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT)] = DEFAULT_TIMEOUT


class _TransitionDoc(_Doc):
    sources: list[_Name] = Field(alias="from", min_length=1)
    to: _Name
    roles: list[_Name] = Field(min_length=1)


class _KindDoc(_Doc):
    states: list[_Name] = Field(min_length=1, max_length=MAX_STATES)
    initial: _Name
    # `register` would shadow ABCMeta.register on the model class.
    registrars: list[_Name] = Field(alias="register", min_length=1)
    consumable: list[_Name]
    transitions: dict[_Name, _TransitionDoc] | None = None


class _ArtefactDoc(_Doc):
    kind: _Name
    path: str
    description: str | None = None
    allow_symlinks: bool = False


class _CaptureDoc(_Doc):
    git: bool = True
    environment: bool = True


class _StepDoc(_Doc):
    command: _Command
    uses: dict[_Name, list[_Name] | None] | None = None
    produces: list[_Name] | None = None
    fires: dict[_Name, _Name] | None = None
    params: list[str] | None = None
    metrics: list[str] | None = None
    capture: _CaptureDoc | None = None


class _PolicyDoc(_Doc):
    version: int
    project: _Name
    chain: _ChainDoc | None = None
    storage: _StorageDoc | None = None
    roles: list[_Name] | None = Field(default=None, max_length=MAX_ROLES)
    kinds: dict[_Name, _KindDoc] | None = None
    artefacts: dict[_Name, _ArtefactDoc] | None = None
    steps: dict[_Name, _StepDoc] | None = None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _validate_schema(tree: _Tree) -> _PolicyDoc:
    """Validate types and names with pydantic; report the error that comes first in the file."""
    try:
        return _PolicyDoc.model_validate(tree.data)
    except ValidationError as exc:
        found = [(*_schema_error(tree, err), i) for i, err in enumerate(exc.errors())]
    _, mark, path, reason, _ = min(found, key=lambda item: (item[0], item[4]))
    raise tree.fail(path, mark, reason) from None


def _schema_error(tree: _Tree, err: Any) -> tuple[_Mark, _Mark, _KeyPath, str]:
    """Translate one pydantic error into its order, its mark, its key path and our own words."""
    loc: _KeyPath = tuple(err["loc"])
    kind: str = err["type"]
    if loc and loc[-1] == "[key]":
        mark = tree.key_mark(loc[:-1])
        return mark, mark, loc[:-1], str(err["msg"])
    if kind == "missing":
        reason = "required key is missing"
        return tree.missing_order(loc), tree.missing_mark(loc), loc, reason
    if kind == "extra_forbidden":
        allowed = _keys_at(loc[:-1])
        reason = f"unknown key (allowed: {', '.join(allowed)})"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            reason += f"; did you mean {close[0]!r}?"
        mark = tree.key_mark(loc)
        return mark, mark, loc, reason
    mark = tree.value_mark(loc)
    got = _describe(err["input"], tree.raw.get(loc))
    ctx = err.get("ctx") or {}
    if kind in _EXPECTED:
        reason = f"expected {_EXPECTED[kind]}, got {got}"
        if kind == "string_type" and tree.raw.get(loc):
            reason += " (quote it to mean the text)"
    elif kind == "command_type":
        reason = f"expected a command string or a list of tokens, got {got}"
    elif kind == "literal_error":
        reason = f"expected {ctx.get('expected')}, got {got}"
    elif kind == "greater_than_equal":
        reason = f"must be at least {ctx.get('ge')}, got {got}"
    elif kind == "greater_than":
        reason = f"must be more than {ctx.get('gt'):g}, got {got}"
    elif kind == "less_than_equal":
        reason = f"must be at most {ctx.get('le'):g}, got {got}"
    elif kind == "too_short":
        reason = "must not be empty"
    elif kind == "too_long":
        reason = f"too many items: {ctx.get('actual_length')}, at most {ctx.get('max_length')}"
    else:
        reason = str(err["msg"])
    return mark, mark, loc, reason


def _keys_at(loc: _KeyPath) -> list[str]:
    """Return the keys the schema allows in the mapping at ``loc``."""
    node: Any = _PolicyDoc
    for part in loc:
        node = _unwrap_optional(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = {f.alias or n: f for n, f in node.model_fields.items()}
            if part not in fields:
                return []
            node = fields[str(part)].annotation
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]
        else:
            return []
    node = _unwrap_optional(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) == 1 and type(None) in get_args(annotation):
        return args[0]
    return annotation


# --------------------------------------------------------------------------- stage 3: references


class _Checker:
    """Cross-reference and backend rules; keeps every finding and reports the first in the file."""

    def __init__(self, tree: _Tree, doc: _PolicyDoc) -> None:
        self.tree = tree
        self.doc = doc
        # (order, sequence, mark, key path, reason): order is where the finding counts in the
        # document, which differs from its mark only for absent keys.
        self.found: list[tuple[_Mark, int, _Mark, _KeyPath, str]] = []
        self.kinds: dict[str, Kind] = dict(DEFAULT_KINDS)
        self.roles: tuple[str, ...] = ()

    def at_value(self, path: _KeyPath, reason: str) -> None:
        """Note a problem with the value at ``path``."""
        mark = self.tree.value_mark(path)
        self.found.append((mark, len(self.found), mark, path, reason))

    def at_key(self, path: _KeyPath, reason: str) -> None:
        """Note a problem with the key of ``path``."""
        mark = self.tree.key_mark(path)
        self.found.append((mark, len(self.found), mark, path, reason))

    def at_missing(self, path: _KeyPath, reason: str) -> None:
        """Note a key that should be present."""
        order = self.tree.missing_order(path)
        self.found.append((order, len(self.found), self.tree.missing_mark(path), path, reason))

    def run(self) -> None:
        """Run every rule; raise the first finding in document order."""
        self._backends()
        self._roles()
        self._kinds()
        self._artefacts()
        self._steps()
        if self.found:
            _, _, mark, path, reason = min(self.found)
            raise self.tree.fail(path, mark, reason)

    def _backends(self) -> None:
        chain = self.doc.chain or _ChainDoc()
        self._backend_url(
            ("chain", "url"),
            chain.url,
            is_needed=chain.backend == "rpc",
            wanted="chain.backend is rpc",
            got=chain.backend,
            schemes=_URL_SCHEMES_CHAIN,
        )
        storage = self.doc.storage or _StorageDoc()
        self._backend_url(
            ("storage", "ipfs"),
            storage.ipfs,
            is_needed=storage.backend == "ipfs",
            wanted="storage.backend is ipfs",
            got=storage.backend,
            schemes=_URL_SCHEMES_IPFS,
        )

    def _backend_url(
        self,
        path: _KeyPath,
        url: str | None,
        *,
        is_needed: bool,
        wanted: str,
        got: str,
        schemes: tuple[str, ...],
    ) -> None:
        if not is_needed:
            if url is not None:
                self.at_value(path, f"only used when {wanted} (backend is {got})")
            return
        if url is None:
            self.at_missing(path, f"required when {wanted}")
            return
        if not _is_url(url, schemes):
            shown = ", ".join(f"{s}://" for s in schemes[:-1]) + f" or {schemes[-1]}://"
            self.at_value(path, f"expected an {shown} URL, got {_q(url)}")

    def _roles(self) -> None:
        declared = list(DEFAULT_ROLES) if self.doc.roles is None else self.doc.roles
        self._duplicates(("roles",), declared, "role")
        user_kinds = self.doc.kinds or {}
        needed = {
            role
            for name, kind in DEFAULT_KINDS.items()
            if name not in user_kinds
            for role in (*kind.register, *(r for t in kind.transitions.values() for r in t.roles))
        }
        added = [role for role in DEFAULT_ROLES if role in needed and role not in declared]
        self.roles = (*dict.fromkeys(declared), *added)
        if len(self.roles) > MAX_ROLES:
            self.at_value(
                ("roles",),
                f"{len(self.roles)} roles once those the default kinds need are added, "
                f"at most {MAX_ROLES}",
            )

    def _kinds(self) -> None:
        for name, doc in (self.doc.kinds or {}).items():
            base: _KeyPath = ("kinds", name)
            states = doc.states
            self._duplicates((*base, "states"), states, "state")
            if doc.initial not in states:
                self.at_value((*base, "initial"), _unknown("state", doc.initial, states))
            self._known_roles((*base, "register"), doc.registrars)
            self._known_states((*base, "consumable"), doc.consumable, states)
            transitions: list[Transition] = []
            for tname, tdoc in (doc.transitions or {}).items():
                tpath = (*base, "transitions", tname)
                self._known_states((*tpath, "from"), tdoc.sources, states)
                if tdoc.to not in states:
                    self.at_value((*tpath, "to"), _unknown("state", tdoc.to, states))
                self._known_roles((*tpath, "roles"), tdoc.roles)
                transitions.append(
                    Transition(tname, tuple(tdoc.sources), tdoc.to, tuple(tdoc.roles))
                )
            self.kinds[name] = Kind(
                name=name,
                states=tuple(states),
                initial=doc.initial,
                register=tuple(doc.registrars),
                consumable=tuple(doc.consumable),
                transitions=_transitions(*transitions),
            )

    def _artefacts(self) -> None:
        seen: dict[str, str] = {}
        for name, doc in (self.doc.artefacts or {}).items():
            base: _KeyPath = ("artefacts", name)
            if doc.kind not in self.kinds:
                self.at_value((*base, "kind"), _unknown("kind", doc.kind, self.kinds))
            problem, normal = _path_problem(doc.path, is_glob=False)
            if problem is not None:
                self.at_value((*base, "path"), problem)
            elif normal in seen:
                self.at_value((*base, "path"), f"same path as artefact {_q(seen[normal])}")
            else:
                seen[normal] = name

    def _steps(self) -> None:
        artefacts = self.doc.artefacts or {}
        commands: dict[tuple[str, ...], str] = {}
        for name, doc in (self.doc.steps or {}).items():
            base: _KeyPath = ("steps", name)
            command = tuple(doc.command)
            if command in commands:
                self.at_value(
                    (*base, "command"),
                    f"same command as step {_q(commands[command])}; a command selects one step",
                )
            else:
                commands[command] = name
            accepted = self._uses(base, doc, artefacts)
            produces = doc.produces or []
            self._duplicates((*base, "produces"), produces, "artefact")
            for i, artefact in enumerate(produces):
                if artefact not in artefacts:
                    self.at_value((*base, "produces", i), _unknown("artefact", artefact, artefacts))
                elif artefact in (doc.uses or {}):
                    self.at_value(
                        (*base, "produces", i),
                        f"artefact {_q(artefact)} is also in uses; a step cannot both use and "
                        "produce an artefact",
                    )
            self._fires(base, doc, artefacts, accepted)
            for key in ("params", "metrics"):
                globs = getattr(doc, key) or []
                self._duplicates((*base, key), globs, "path")
                for i, pattern in enumerate(globs):
                    problem, _ = _path_problem(pattern, is_glob=True)
                    if problem is not None:
                        self.at_value((*base, key, i), problem)
            if not (doc.uses or doc.produces or doc.fires):
                self.at_key(base, "the step has no uses, produces or fires, so it records nothing")

    def _uses(
        self, base: _KeyPath, doc: _StepDoc, artefacts: Mapping[str, _ArtefactDoc]
    ) -> dict[str, tuple[str, ...]]:
        accepted: dict[str, tuple[str, ...]] = {}
        for artefact, states in (doc.uses or {}).items():
            path = (*base, "uses", artefact)
            if artefact not in artefacts:
                self.at_key(path, _unknown("artefact", artefact, artefacts))
                continue
            kind = self.kinds.get(artefacts[artefact].kind)
            if kind is None:
                continue
            if states is None:
                if not kind.consumable:
                    self.at_value(
                        path,
                        f"kind {_q(kind.name)} has no consumable states; list the states "
                        "this step accepts",
                    )
                accepted[artefact] = kind.consumable
                continue
            if not states:
                self.at_value(
                    path,
                    "an empty list accepts no version; leave it empty (null) to accept the "
                    "kind's consumable states",
                )
            self._known_states(path, states, kind.states, kind=kind.name)
            accepted[artefact] = tuple(states)
        return accepted

    def _fires(
        self,
        base: _KeyPath,
        doc: _StepDoc,
        artefacts: Mapping[str, _ArtefactDoc],
        accepted: Mapping[str, tuple[str, ...]],
    ) -> None:
        produces = doc.produces or []
        for artefact, tname in (doc.fires or {}).items():
            path = (*base, "fires", artefact)
            if artefact not in artefacts:
                self.at_key(path, _unknown("artefact", artefact, artefacts))
                continue
            if artefact not in (doc.uses or {}) and artefact not in produces:
                self.at_key(
                    path, f"artefact {_q(artefact)} is neither used nor produced by the step"
                )
                continue
            kind = self.kinds.get(artefacts[artefact].kind)
            if kind is None:
                continue
            transition = kind.transitions.get(tname)
            if transition is None:
                self.at_value(
                    path,
                    _unknown(
                        "transition", tname, kind.transitions, suffix=f" of kind {_q(kind.name)}"
                    ),
                )
                continue
            sources = ", ".join(transition.sources)
            if artefact in produces:
                if kind.initial not in transition.sources:
                    self.at_value(
                        path,
                        f"transition {_q(tname)} starts from {sources}, but a produced version "
                        f"starts in {kind.initial}",
                    )
                continue
            blocked = [s for s in accepted.get(artefact, ()) if s not in transition.sources]
            if blocked:
                self.at_value(
                    path,
                    f"transition {_q(tname)} starts from {sources}, but the step accepts "
                    f"{artefact} in {blocked[0]}",
                )

    def _known_roles(self, path: _KeyPath, roles: Sequence[str]) -> None:
        self._duplicates(path, roles, "role")
        for i, role in enumerate(roles):
            if role not in self.roles:
                self.at_value((*path, i), _unknown("role", role, self.roles))

    def _known_states(
        self, path: _KeyPath, states: Sequence[str], known: Sequence[str], *, kind: str = ""
    ) -> None:
        self._duplicates(path, states, "state")
        suffix = f" of kind {_q(kind)}" if kind else ""
        for i, state in enumerate(states):
            if state not in known:
                self.at_value((*path, i), _unknown("state", state, known, suffix=suffix))

    def _duplicates(self, path: _KeyPath, items: Sequence[str], what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item in seen:
                self.at_value((*path, i), f"{what} {_q(item)} is listed twice")
            seen.add(item)


def _is_url(url: str, schemes: tuple[str, ...]) -> bool:
    """Tell whether ``url`` is an absolute URL with one of ``schemes``, a host and a sane port."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.hostname)


def _unknown(what: str, name: str, known: Iterable[str], *, suffix: str = "") -> str:
    listed = _listing(known)
    return f"unknown {what} {_q(name)}{suffix} ({what}s: {listed or 'none'})"


def _path_problem(path: str, *, is_glob: bool) -> tuple[str | None, str]:
    """Return why ``path`` may not name project content (or None) and its normal form."""
    what = "pattern" if is_glob else "path"
    if not path:
        return f"the {what} is empty", ""
    if "\x00" in path:
        return f"the {what} contains a NUL character", ""
    if "\\" in path:
        return f"use '/' to separate directories, not '\\' ({_q(path)})", ""
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return f"absolute {what} {_q(path)}; write it relative to the policy's directory", ""
    if path.startswith("~"):
        return f"'~' is not expanded in {_q(path)}; write it relative to the policy's directory", ""
    normal = posixpath.normpath(path)
    first = normal.split("/", 1)[0]
    if first == "..":
        return f"{what} {_q(path)} leaves the project directory", ""
    if normal == ".":
        return f"{what} {_q(path)} is the project directory itself", ""
    if first == ".proml":
        return f"{what} {_q(path)} is inside proml's own state directory .proml/", ""
    return None, normal


# --------------------------------------------------------------------------- building


def _build(
    doc: _PolicyDoc,
    *,
    roles: tuple[str, ...],
    kinds: Mapping[str, Kind],
    source: str,
    root: Path,
    digest: str,
) -> Policy:
    """Resolve the defaults of a checked document into the public model."""
    chain = doc.chain or _ChainDoc()
    storage = doc.storage or _StorageDoc()
    artefacts = {
        name: Artefact(
            name=name,
            kind=a.kind,
            path=posixpath.normpath(a.path),
            description=a.description,
            allow_symlinks=a.allow_symlinks,
        )
        for name, a in (doc.artefacts or {}).items()
    }
    steps: dict[str, Step] = {}
    for name, s in (doc.steps or {}).items():
        uses = {
            artefact: (
                kinds[artefacts[artefact].kind].consumable if states is None else tuple(states)
            )
            for artefact, states in (s.uses or {}).items()
        }
        capture = s.capture or _CaptureDoc()
        steps[name] = Step(
            name=name,
            command=tuple(s.command),
            uses=MappingProxyType(uses),
            produces=tuple(s.produces or ()),
            fires=MappingProxyType(dict(s.fires or {})),
            params=tuple(posixpath.normpath(p) for p in s.params or ()),
            metrics=tuple(posixpath.normpath(p) for p in s.metrics or ()),
            capture_git=capture.git,
            capture_environment=capture.environment,
        )
    return Policy(
        source=source,
        root=root,
        digest=digest,
        project=doc.project,
        chain=ChainConfig(chain.backend, chain.url, chain.confirmations, float(chain.timeout)),
        storage=StorageConfig(
            storage.backend, storage.ipfs, storage.cid_version, float(storage.timeout)
        ),
        roles=roles,
        kinds=MappingProxyType(dict(kinds)),
        artefacts=MappingProxyType(artefacts),
        steps=MappingProxyType(steps),
    )


# --------------------------------------------------------------------------- text helpers


def _dotted(path: _KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _q(text: str, limit: int = 60) -> str:
    """Quote user text for a message: one line, escaped, shortened."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _one_line(text: str) -> str:
    """Escape anything that could break the one-line message (newlines, other controls)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _listing(names: Iterable[str]) -> str:
    items = list(names)
    shown = ", ".join(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown += f", ... ({len(items) - _LIST_LIMIT} more)"
    return shown


def _describe(value: object, raw: str | None) -> str:
    """Describe a YAML value for an "expected X, got Y" message."""
    if value is None:
        return "null" if raw else "an empty value"
    if isinstance(value, bool):
        return f"the boolean {raw or str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {raw or value}"
    if isinstance(value, float):
        return f"the number {raw or value}"
    if isinstance(value, str):
        return f"the string {_q(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
