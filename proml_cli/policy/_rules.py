"""Stage 3: the rules that cross references (names, kinds, steps, paths, URLs)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from proml_cli.ledger import Kind, Transition
from proml_cli.policy._common import (
    _URL_SCHEMES_CHAIN,
    _URL_SCHEMES_IPFS,
    DEFAULT_ROLES,
    MAX_ROLES,
    _KeyPath,
    _listing,
    _Mark,
    _q,
)
from proml_cli.policy._schema import _ArtefactDoc, _ChainDoc, _PolicyDoc, _StepDoc, _StorageDoc
from proml_cli.policy._yaml import _Tree
from proml_cli.policy.model import DEFAULT_KINDS, _transitions

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
        storage = self.doc.storage or _StorageDoc()
        # (section, URL key, its URL, the backend chosen, the backend that needs the URL)
        for section, key, url, backend, needs, schemes in (
            ("chain", "url", chain.url, chain.backend, "rpc", _URL_SCHEMES_CHAIN),
            ("storage", "ipfs", storage.ipfs, storage.backend, "ipfs", _URL_SCHEMES_IPFS),
        ):
            self._backend_url(
                (section, key),
                url,
                is_needed=backend == needs,
                wanted=f"{section}.backend is {needs}",
                got=backend,
                schemes=schemes,
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
