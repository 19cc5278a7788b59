"""The resolved policy: the frozen model every other module reads.

Kinds, transitions and the chain's configuration have one model, shared with the ledger that
stores them (:mod:`proml_cli.ledger`); this module imports and re-exports it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from proml_cli.digest import prefixed
from proml_cli.errors import InputError
from proml_cli.ledger import ChainConfig, Kind, Transition
from proml_cli.policy._common import (
    _NAME_CHARS,
    _TEMPLATE_PROJECT,
    DEFAULT_TIMEOUT,
    NAME_MAX_BYTES,
    TEMPLATE_PATH,
    _listing,
    _one_line,
    _q,
)
from proml_cli.suggest import did_you_mean

# --------------------------------------------------------------------------- resolved model


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
    return {t.name: t for t in items}


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
    return prefixed(hashlib.sha256(data.encode("ascii")).hexdigest())


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
