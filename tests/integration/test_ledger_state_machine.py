"""Property test: the contract behaves exactly like a pure-Python model of the same state machines.

Hypothesis drives random kind definitions (some deliberately flawed), artefact bindings, role
grants and revocations, registrations, transitions and batches, each sent by one of a small pool
of accounts (the admin among them). For every operation the model predicts success or the
contract error that must stop it; after every step the on-chain state of every version and the
roles of every account must equal the model's.

One chain serves the whole run (deploying per example would dominate the run time); each
example works under fresh kind and artefact names, and starts from the roles the accounts
already hold on-chain.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from _chain_helpers import define_kind_raw, new_account, random_cid
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from proml_cli.errors import LedgerError
from proml_cli.ledger import (
    ChainConfig,
    Kind,
    Ledger,
    Move,
    Registration,
    Transition,
    VersionRef,
    open_ledger,
)
from proml_cli.ledger._client import ContractLedger
from proml_cli.ledger._embedded import EmbeddedLedger

pytestmark = pytest.mark.integration

ROLES = ("r0", "r1", "r2")
#: Accounts acting on the ledger; the first is the admin.
ACCOUNTS = 4
#: Each example draws version digests from a small pool, so duplicates happen.
DIGESTS = 6

_examples = itertools.count()


@dataclass(frozen=True)
class Chain:
    """The run's ledger as seen by each account (index 0 is the admin)."""

    accounts: tuple[Ledger, ...]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    admin = new_account()
    state_dir: Path = tmp_path_factory.mktemp("chain")
    with open_ledger(ChainConfig(state_dir=state_dir), signer=admin) as ledger:
        ledger.define_roles(ROLES)
        others = tuple(ledger.with_signer(new_account()) for _ in range(ACCOUNTS - 1))
        yield Chain((ledger, *others))


# ---------------------------------------------------------------------------- the model

Op = Registration | Move


def _ordered(items: set[str] | frozenset[str], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x for x in order if x in items)


@dataclass
class Model:
    """What the contract must hold: kinds, artefact bindings, version states, roles."""

    kinds: dict[str, Kind]
    artefacts: dict[str, str]
    versions: dict[VersionRef, str]
    roles: dict[str, frozenset[str]]

    def copy(self) -> Model:
        return Model(dict(self.kinds), dict(self.artefacts), dict(self.versions), dict(self.roles))

    def apply(self, sender: str, op: Op) -> str | None:
        """Apply ``op`` by ``sender``; return the contract error it must raise, or None."""
        if isinstance(op, Registration):
            ref = op.version
            kind_name = self.artefacts.get(ref.artefact)
            if kind_name is None:
                return "UnknownArtefact"
            kind = self.kinds[kind_name]
            if not self.roles[sender] & set(kind.register):
                return "MissingRole"
            if ref in self.versions:
                return "DuplicateVersion"
            self.versions[ref] = kind.initial
            return None
        ref = op.version
        if ref not in self.versions:
            return "UnknownVersion"
        kind = self.kinds[self.artefacts[ref.artefact]]
        spec = kind.transitions.get(op.transition)
        if spec is None:
            return "UnknownTransition"
        if self.versions[ref] not in spec.sources:
            return "WrongState"
        if not self.roles[sender] & set(spec.roles):
            return "MissingRole"
        self.versions[ref] = spec.target
        return None


# ---------------------------------------------------------------------------- strategies

FLAWS = (
    "duplicate-state",
    "no-register-role",
    "undefined-register-role",
    "no-source",
    "undefined-target",
    "no-transition-role",
    "duplicate-transition",
    "kind-exists",
)
FLAW_ERRORS = {
    "duplicate-state": "DuplicateState",
    "no-register-role": "NoRoles",
    "undefined-register-role": "UnknownRole",
    "no-source": "NoSourceStates",
    "undefined-target": "UnknownState",
    "no-transition-role": "NoRoles",
    "duplicate-transition": "DuplicateTransition",
    # The first kind always has a version (see `start`): its rules are fixed.
    "kind-exists": "KindInUse",
}


def _subset(draw: Callable[..., Any], pool: tuple[str, ...], min_size: int = 1) -> tuple[str, ...]:
    chosen = draw(st.sets(st.sampled_from(pool), min_size=min_size, max_size=len(pool)))
    return _ordered(chosen, pool)


@st.composite
def kind_specs(draw: Callable[..., Any], name: str, is_rich: bool = False) -> Kind:
    """A valid kind: 1-4 states and 0-3 transitions, or 2+ and 1+ if ``is_rich``.

    Sources and roles come in on-chain order, so a kind reads back equal to its spec.
    """
    states = tuple(f"s{i}" for i in range(draw(st.integers(1 + is_rich, 4))))
    transitions = tuple(
        Transition(
            name=f"t{i}",
            sources=_subset(draw, states),
            target=draw(st.sampled_from(states)),
            roles=_subset(draw, ROLES),
        )
        for i in range(draw(st.integers(int(is_rich), 3)))
    )
    return Kind.of(
        name=name,
        states=states,
        initial=draw(st.sampled_from(states)),
        register=_subset(draw, ROLES),
        transitions=transitions,
    )


def flawed(spec: Kind, flaw: str, existing: str | None) -> Kind:
    """``spec`` broken in one way the contract must refuse."""
    first = Transition("t0", spec.states[:1], spec.states[0], ROLES[:1])
    listed = list(spec.transitions.values())
    if listed:
        first = listed[0]
    rest = {t.name: t for t in listed[1:]}
    if flaw == "duplicate-state":
        return replace(spec, states=(*spec.states, spec.states[0]))
    if flaw == "no-register-role":
        return replace(spec, register=())
    if flaw == "undefined-register-role":
        return replace(spec, register=(*spec.register, "undefined-role"))
    if flaw == "no-source":
        return replace(spec, transitions={first.name: replace(first, sources=()), **rest})
    if flaw == "undefined-target":
        return replace(spec, transitions={first.name: replace(first, target="undefined"), **rest})
    if flaw == "no-transition-role":
        return replace(spec, transitions={first.name: replace(first, roles=()), **rest})
    if flaw == "duplicate-transition":
        # Sent raw (see _define_kind): the model keys transitions by name.
        return replace(spec, transitions={first.name: first, **rest})
    assert flaw == "kind-exists"
    assert existing is not None
    return replace(spec, name=existing)


# ---------------------------------------------------------------------------- the machine


class LedgerMachine(RuleBasedStateMachine):
    """Random operations on the real contract, checked step by step against :class:`Model`."""

    def __init__(self, chain: Chain) -> None:
        super().__init__()
        self.accounts = chain.accounts
        self.admin = chain.accounts[0]
        self.prefix = f"x{next(_examples)}-"
        self.counter = itertools.count()
        self.model = Model(
            kinds={},
            artefacts={},
            versions={},
            roles={a.account: frozenset(self.admin.roles_of(a.account)) for a in self.accounts},
        )
        digests = (hashlib.sha256(f"{self.prefix}{i}".encode()).hexdigest() for i in range(DIGESTS))
        self.digests = tuple(digests)
        self.undefined_artefact = self.fresh("u")

    def fresh(self, tag: str) -> str:
        name = f"{self.prefix}{tag}{next(self.counter)}"
        assert len(name) <= 32
        return name

    def expect(self, error: str | None, action: Callable[[], object]) -> None:
        """Run ``action``: it must succeed when ``error`` is None, else raise that error."""
        event(f"outcome: {error or 'ok'}")
        if error is None:
            action()
            return
        with pytest.raises(LedgerError) as info:
            action()
        assert getattr(info.value, "contract_error", None) == error, str(info.value)

    def caller(self, data: st.DataObject) -> Ledger:
        """One account of the pool, drawn by index (0 is the admin)."""
        # Half the draws pick the admin: most operations need its power or its roles.
        index = st.just(0) | st.integers(0, ACCOUNTS - 1)
        return self.accounts[data.draw(index, label="caller")]

    def is_admin(self, caller: Ledger) -> bool:
        return caller.account == self.admin.account

    # -- definitions

    def _define_kind(self, caller: Ledger, spec: Kind, flaw: str | None) -> None:
        if not self.is_admin(caller):
            error: str | None = "NotAdmin"
        else:
            error = None if flaw is None else FLAW_ERRORS[flaw]
        if flaw == "duplicate-transition":
            twice = (*spec.transitions.values(), next(iter(spec.transitions.values())))
            self.expect(error, lambda: define_kind_raw(caller, spec, twice))
        else:
            self.expect(error, lambda: caller.define_kind(spec))
        if error is None:
            self.model.kinds[spec.name] = spec
            assert self.admin.kind(spec.name) == spec
        else:  # refused as a whole: no half-defined kind, an existing one unchanged
            assert self.admin.kind(spec.name) == self.model.kinds.get(spec.name)

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        spec = data.draw(kind_specs(self.fresh("k"), is_rich=True), label="kind")
        self._define_kind(self.admin, spec, None)
        artefact = self.fresh("a")
        self.admin.define_artefacts({artefact: spec.name})
        self.model.artefacts[artefact] = spec.name
        # Deal each account a random set of roles, so that operations can succeed from step one;
        # the admin may register, and registers a first version.
        for ledger in self.accounts:
            account = ledger.account
            wanted = frozenset(data.draw(st.sets(st.sampled_from(ROLES)), label="roles"))
            if ledger is self.admin:
                wanted |= {spec.register[0]}
            held = self.model.roles[account]
            for role in sorted(wanted - held):
                self.admin.grant_role(role, account)
            for role in sorted(held - wanted):
                self.admin.revoke_role(role, account)
            self.model.roles[account] = wanted
        first = Registration(VersionRef(artefact, self.digests[0]), random_cid())
        self._submit(self.admin, [first], [])

    @rule(data=st.data())
    def define_kind(self, data: st.DataObject) -> None:
        caller = self.caller(data)
        spec = data.draw(kind_specs(self.fresh("k")), label="kind")
        flaw = data.draw(st.none() | st.sampled_from(FLAWS), label="flaw")
        existing = next(iter(self.model.kinds), None)
        if flaw is not None:
            spec = flawed(spec, flaw, existing)
        self._define_kind(caller, spec, flaw)

    @rule(data=st.data())
    def define_artefact(self, data: st.DataObject) -> None:
        caller = self.caller(data)
        kind = data.draw(st.sampled_from(sorted(self.model.kinds)), label="kind")
        name = self.fresh("a")
        error = None if self.is_admin(caller) else "NotAdmin"
        self.expect(error, lambda: caller.define_artefacts({name: kind}))
        if error is None:
            self.model.artefacts[name] = kind
        assert self.admin.artefact_kind(name) == self.model.artefacts.get(name)

    @rule(data=st.data(), is_grant=st.booleans())
    def grant_or_revoke(self, data: st.DataObject, is_grant: bool) -> None:
        caller = self.caller(data)
        account = self.accounts[data.draw(st.integers(0, ACCOUNTS - 1), label="account")].account
        role = data.draw(st.sampled_from(ROLES), label="role")
        error = None if self.is_admin(caller) else "NotAdmin"
        if is_grant:
            self.expect(error, lambda: caller.grant_role(role, account))
        else:
            self.expect(error, lambda: caller.revoke_role(role, account))
        if error is None:
            held = self.model.roles[account]
            self.model.roles[account] = held | {role} if is_grant else held - {role}
        self.check_roles()

    # -- versions

    def _refs(self) -> st.SearchStrategy[VersionRef]:
        """Any version of a bound artefact, or now and then one of an unbound artefact."""
        defined = sorted(self.model.artefacts)
        artefacts = st.sampled_from(defined) | st.sampled_from([*defined, self.undefined_artefact])
        return st.builds(VersionRef, artefacts, st.sampled_from(self.digests))

    def _registration(self, data: st.DataObject) -> Registration:
        ref = data.draw(self._refs(), label="version")
        inputs = data.draw(st.lists(self._refs(), max_size=2), label="inputs")
        return Registration(ref, random_cid(), tuple(inputs))

    def _move(self, data: st.DataObject, pending: tuple[VersionRef, ...] = ()) -> Move:
        """Mostly a transition the version's kind defines, on a registered (or ``pending``)
        version; now and then any version and any name (t3 is never defined)."""
        anything = st.builds(Move, self._refs(), st.sampled_from(("t0", "t3")))
        refs = (*self.model.versions, *pending)
        defined = [Move(ref, t.name) for ref, t in self._transitions_of(refs)]
        if not defined:
            return data.draw(anything, label="move")
        some = st.sampled_from(defined)
        return data.draw(some | some | anything, label="move")

    def _submit(self, caller: Ledger, regs: list[Registration], moves: list[Move]) -> None:
        trial = self.model.copy()
        error = None
        ops: list[Op] = [*regs, *moves]
        for op in ops:
            error = trial.apply(caller.account, op)
            if error is not None:
                break
        self.expect(error, lambda: caller.submit(random_cid(), regs, moves))
        if error is None:
            self.model = trial

    @rule(data=st.data())
    def register(self, data: st.DataObject) -> None:
        caller = self.caller(data)
        self._submit(caller, [self._registration(data)], [])

    @rule(data=st.data())
    def transition(self, data: st.DataObject) -> None:
        caller = self.caller(data)
        self._submit(caller, [], [self._move(data)])

    @precondition(lambda self: bool(self._enabled_moves()))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """A transition allowed from the version's state: only the caller's roles decide."""
        move = data.draw(st.sampled_from(self._enabled_moves()), label="move")
        caller = self.accounts[data.draw(st.integers(0, ACCOUNTS - 1), label="caller")]
        self._submit(caller, [], [move])

    def _transitions_of(self, refs: tuple[VersionRef, ...]) -> list[tuple[VersionRef, Transition]]:
        """Every (version, transition its kind defines), in a stable order."""
        pairs: list[tuple[VersionRef, Transition]] = []
        for ref in sorted(set(refs), key=lambda r: (r.artefact, r.digest)):
            kind = self.model.kinds.get(self.model.artefacts.get(ref.artefact, ""))
            if kind is not None:
                pairs.extend((ref, t) for t in kind.transitions.values())
        return pairs

    def _enabled_moves(self) -> list[Move]:
        return [
            Move(ref, t.name)
            for ref, t in self._transitions_of(tuple(self.model.versions))
            if self.model.versions[ref] in t.sources
        ]

    @rule(data=st.data())
    def batch(self, data: st.DataObject) -> None:
        caller = self.caller(data)
        # At least two operations, so that the contract's batch() runs (EmptyBatch and the
        # single-operation calls are covered by the other rules and test_ledger_contract).
        regs = [self._registration(data) for _ in range(data.draw(st.integers(0, 3)))]
        more = data.draw(st.integers(max(0, 2 - len(regs)), 3))
        pending = tuple(r.version for r in regs)
        moves = [self._move(data, pending) for _ in range(more)]
        self._submit(caller, regs, moves)

    # -- what must always hold

    @invariant()
    def chain_equals_model(self) -> None:
        # Every version the model knows, after every step (reads cost ~6 ms each: the checks
        # that cannot change between steps run once, in teardown or in the rule that may).
        for ref, expected in self.model.versions.items():
            found = self.admin.version(ref)
            assert found is not None, ref
            kind = self.model.kinds[self.model.artefacts[ref.artefact]]
            assert found.kind == kind.name
            assert found.state in kind.states
            assert found.state == expected, (ref, found.state, expected)

    def check_roles(self) -> None:
        for account, held in self.model.roles.items():
            assert self.admin.roles_of(account) == _ordered(held, ROLES)

    def check_views_from_storage(self) -> None:
        """The embedded ledger answers views from storage words: the EVM must agree on each."""
        admin = self.admin
        assert isinstance(admin, EmbeddedLedger)
        assert admin.kind_names() == ContractLedger.kind_names(admin)
        assert admin.role_names() == ContractLedger.role_names(admin)
        for name in (*self.model.kinds, self.fresh("k")):
            assert admin.kind(name) == ContractLedger.kind(admin, name)
        for artefact in (*self.model.artefacts, self.undefined_artefact):
            assert admin.artefact_kind(artefact) == ContractLedger.artefact_kind(admin, artefact)
        for account in (*self.model.roles, new_account().address):
            assert admin.roles_of(account) == ContractLedger.roles_of(admin, account)
        unknown = [VersionRef(self.undefined_artefact, d) for d in self.digests]
        for ref in (*self.model.versions, *unknown):
            in_storage, in_evm = admin.version(ref), ContractLedger.version(admin, ref)
            assert in_storage == in_evm
            if in_storage is not None and in_evm is not None:
                assert (in_storage.steps, in_storage.head) == (in_evm.steps, in_evm.head)

    def teardown(self) -> None:
        self.check_roles()
        self.check_views_from_storage()
        for digest in self.digests:  # nothing ever registers versions of an unbound artefact
            assert self.admin.version(VersionRef(self.undefined_artefact, digest)) is None


# Bounded so the test stays well under a minute on two cores (~60 ms per transaction).
SETTINGS = settings(
    max_examples=10,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
def test_contract_matches_model(chain: Chain) -> None:
    # Hypothesis accepts any factory here; its annotation says a class.
    factory: Any = lambda: LedgerMachine(chain)  # noqa: E731
    run_state_machine_as_test(factory, settings=SETTINGS)
