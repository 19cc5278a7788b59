"""The policy-vs-ledger comparison and the history fold's handling of redefinitions and rebinds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proml_cli.consistency import kind_differences
from proml_cli.history import build
from proml_cli.ledger import ChainEvent, Kind, Transition

KIND = Kind.of(
    name="table",
    states=("raw", "validated", "rejected"),
    initial="raw",
    register=("curator", "trainer"),
    transitions=(
        Transition("validate", ("raw",), "validated", ("curator",)),
        Transition("reject", ("raw", "validated"), "rejected", ("curator", "verifier")),
    ),
    consumable=("validated",),
)
VALIDATE, REJECT = KIND.transitions.values()


def _by_name(*transitions: Transition) -> dict[str, Transition]:
    return {t.name: t for t in transitions}


def test_the_same_kind_in_another_order_has_no_difference() -> None:
    shuffled = replace(
        KIND,
        register=("trainer", "curator"),
        transitions=_by_name(
            Transition("reject", ("validated", "raw"), "rejected", ("verifier", "curator")),
            VALIDATE,
        ),
        in_use=True,
    )
    assert kind_differences(KIND, shuffled) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"states": ("validated", "raw", "rejected")},
            "states: policy [validated, raw, rejected], ledger [raw, validated, rejected]",
        ),
        ({"initial": "validated"}, "initial state: policy 'validated', ledger 'raw'"),
        (
            {"register": ("curator",)},
            "register roles: policy [curator], ledger [curator, trainer]",
        ),
        (
            {"consumable": ("raw", "validated")},
            "consumable states: policy [raw, validated], ledger [validated]",
        ),
        ({"transitions": _by_name(VALIDATE)}, "transition 'reject' is only on the ledger"),
        (
            {"transitions": _by_name(VALIDATE, REJECT, Transition("x", ("raw",), "raw", ("a",)))},
            "transition 'x' is only in the policy",
        ),
        (
            {"transitions": _by_name(VALIDATE, replace(REJECT, roles=("a",)))},
            "transition 'reject' roles: policy [a], ledger [curator, verifier]",
        ),
        (
            {"transitions": _by_name(VALIDATE, replace(REJECT, target="raw"))},
            "transition 'reject' to: policy 'raw', ledger 'rejected'",
        ),
        (
            {"transitions": _by_name(replace(VALIDATE, sources=("rejected",)))},
            "transition 'validate' from: policy [rejected], ledger [raw]",
        ),
    ],
)
def test_each_difference_is_named(change: dict[str, object], expected: str) -> None:
    assert expected in kind_differences(replace(KIND, **change), KIND)  # type: ignore[arg-type]


def _event(name: str, position: int, **args: object) -> ChainEvent:
    return ChainEvent(name, position, 0, "0x", 0, dict(args))


def _kind_events(kind: Kind, position: int) -> list[ChainEvent]:
    events = [
        _event(
            "KindDefined",
            position,
            kind=kind.name,
            states=list(kind.states),
            initial=kind.states.index(kind.initial),
            registerRoles=list(kind.register),
            consumable=list(kind.consumable),
        )
    ]
    for t in kind.transitions.values():
        events.append(
            _event(
                "TransitionDefined",
                position,
                kind=kind.name,
                transition=t.name,
                sources=list(t.sources),
                target=t.target,
                roles=list(t.roles),
            )
        )
    return events


def _registered(artefact: str, digest: str, position: int) -> ChainEvent:
    return _event(
        "Registered",
        position,
        artefact=artefact,
        digest=digest,
        actor="0x1",
        cid="c",
        recordCid="r",
        inputs=[],
        roles=1,
    )


def test_the_fold_takes_a_redefinition_and_a_rebind_in_order() -> None:
    redefined = replace(KIND, states=("new", "validated", "rejected"), initial="new")
    redefined = replace(
        redefined, transitions=_by_name(Transition("validate", ("new",), "validated", ("curator",)))
    )
    successor = replace(KIND, name="table-v2", states=("fresh", "validated"), initial="fresh")
    successor = replace(successor, transitions={})
    events = [
        *_kind_events(KIND, 1),
        _event("ArtefactDefined", 2, artefact="data", kind="table"),
        *_kind_events(redefined, 3),  # redefined while unused
        _registered("data", "aa", 4),
        *_kind_events(successor, 5),
        _event("ArtefactDefined", 6, artefact="data", kind="table-v2"),  # rebound
        _registered("data", "bb", 7),
    ]
    history = build(events, role_names=("curator",))
    assert history.kinds["table"] == redefined
    assert history.artefact_kinds == {"data": "table-v2"}
    old, new = history.of_artefact("data")
    assert (old.kind, old.state, old.registered.roles) == ("table", "new", ("curator",))
    assert (new.kind, new.state) == ("table-v2", "fresh")


def test_the_fold_keeps_events_naming_unknown_things_out() -> None:
    events = [
        _registered("ghost", "aa", 1),
        _event(
            "Transitioned",
            2,
            artefact="nobody",
            digest="bb",
            actor="0x1",
            transition="t",
            source=0,
            target=1,
            recordCid="r",
            roles=1,
        ),
        _event(
            "TransitionDefined", 3, kind="none", transition="t", sources=[], target="x", roles=[]
        ),
    ]
    history = build(events)
    assert list(history.versions) == [("ghost", "aa")]
    assert history.versions[("ghost", "aa")].kind == "?"
