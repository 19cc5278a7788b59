"""Is the policy's view of a kind or artefact the ledger's? One comparison for every command.

The contract is the authority on kinds (states, initial state, roles, transitions, consumable
states) and on which kind each artefact is bound to; the policy file is a local copy anyone can
edit. A command that reads or writes a kind therefore compares the two first and refuses (exit 2,
naming each difference) when they differ: a local edit never loosens or changes the gate
silently. The consumer's explicit ``--state`` is not a policy edit and stays theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from proml_cli.errors import InputError

if TYPE_CHECKING:
    from proml_cli.ledger import Kind, Ledger
    from proml_cli.policy import Policy

INIT_HINT = (
    "run `proml init` (the admin) so that the ledger defines the policy's kinds and artefacts"
)
DRIFT_HINT = (
    "the ledger's rules apply: restore the kind in the policy, or have the admin run "
    "`proml init` to apply the change (a kind with recorded versions needs a successor kind, "
    "see docs/policy.md)"
)


def _listed(values: Iterable[str]) -> str:
    items = list(values)
    return "[" + ", ".join(items) + "]" if items else "[]"


def kind_differences(policy_kind: Kind, ledger_kind: Kind) -> list[str]:
    """Every difference between a kind as the policy defines it and as the ledger does.

    Order-insensitive where the contract does not keep order (roles, sources, transitions,
    consumable states); the states' order matters (the ledger records states by index).
    """
    p, c = policy_kind, ledger_kind
    found = []
    if p.states != c.states:
        found.append(f"states: policy {_listed(p.states)}, ledger {_listed(c.states)}")
    if p.initial != c.initial:
        found.append(f"initial state: policy '{p.initial}', ledger '{c.initial}'")
    if set(p.register) != set(c.register):
        found.append(
            f"register roles: policy {_listed(sorted(p.register))}, "
            f"ledger {_listed(sorted(c.register))}"
        )
    if set(p.consumable) != set(c.consumable):
        found.append(
            f"consumable states: policy {_listed(sorted(p.consumable))}, "
            f"ledger {_listed(sorted(c.consumable))}"
        )
    mine, theirs = p.transitions, c.transitions
    for name in sorted(mine.keys() - theirs.keys()):
        found.append(f"transition '{name}' is only in the policy")
    for name in sorted(theirs.keys() - mine.keys()):
        found.append(f"transition '{name}' is only on the ledger")
    for name in sorted(mine.keys() & theirs.keys()):
        a, b = mine[name], theirs[name]
        if set(a.sources) != set(b.sources):
            found.append(
                f"transition '{name}' from: policy {_listed(sorted(a.sources))}, "
                f"ledger {_listed(sorted(b.sources))}"
            )
        if a.target != b.target:
            found.append(f"transition '{name}' to: policy '{a.target}', ledger '{b.target}'")
        if set(a.roles) != set(b.roles):
            found.append(
                f"transition '{name}' roles: policy {_listed(sorted(a.roles))}, "
                f"ledger {_listed(sorted(b.roles))}"
            )
    return found


def policy_kind(policy: Policy, name: str) -> Kind | None:
    """The policy's kind ``name`` in the ledger's terms, or None if no artefact uses it.

    An unused kind is a built-in default or one the artefacts moved on from: the ledger's
    definition is then the only one.
    """
    if name not in {a.kind for a in policy.artefacts.values()}:
        return None
    return policy.kinds[name]


def require_same_kind(policy: Policy, ledger_kind: Kind, *, hint: str = DRIFT_HINT) -> None:
    """Refuse (exit 2) when the policy defines ``ledger_kind``'s name differently.

    A kind no artefact of the policy uses (e.g. one its artefacts moved on from to a successor
    kind) is not a difference: the ledger's definition is then the only one.

    Raises:
        InputError: naming every difference.
    """
    mine = policy_kind(policy, ledger_kind.name)
    if mine is None:
        return
    found = kind_differences(mine, ledger_kind)
    if found:
        raise InputError(
            f"kind '{ledger_kind.name}' in {policy.source} differs from the ledger's: "
            + "; ".join(found),
            hint=hint,
        )


def require_on_ledger(
    policy: Policy,
    ledger: Ledger,
    artefacts: Iterable[str],
    transitions: Mapping[str, str] | None = None,
) -> dict[str, Kind]:
    """Check the policy's artefacts (and their kinds and transitions) are the ledger's.

    Each artefact must be bound on the ledger to the policy's kind, that kind defined exactly
    as the policy says, and each ``transitions`` entry (artefact → transition) exist there.

    Returns:
        The ledger's kinds by name.

    Raises:
        InputError: (exit 2) listing every problem, with the hint to run ``proml init``.
    """
    problems: list[str] = []
    kinds: dict[str, Kind] = {}
    for name in dict.fromkeys(artefacts):
        artefact = policy.artefacts.get(name)
        if artefact is None:
            problems.append(f"artefact '{name}' is not in the policy")
            continue
        bound = ledger.artefact_kind(name)
        if bound is None:
            problems.append(f"artefact '{name}' is not defined on the ledger")
            continue
        if bound != artefact.kind:
            problems.append(
                f"artefact '{name}' is of kind '{bound}' on the ledger, "
                f"of kind '{artefact.kind}' in the policy"
            )
            continue
        if bound not in kinds:
            onchain = ledger.kind(bound)
            if onchain is None:  # pragma: no cover - the contract binds defined kinds only
                problems.append(f"kind '{bound}' is not defined on the ledger")
                continue
            kinds[bound] = onchain
            mine = policy_kind(policy, bound)
            if mine is not None:
                problems.extend(
                    f"kind '{bound}': {d}" for d in kind_differences(mine, kinds[bound])
                )
    for name, transition in (transitions or {}).items():
        kind = kinds.get(policy.artefacts[name].kind) if name in policy.artefacts else None
        if kind is not None and transition not in kind.transitions:
            problems.append(f"kind '{kind.name}' has no transition '{transition}' on the ledger")
    if problems:
        raise InputError(
            "the policy and the ledger differ: " + "; ".join(dict.fromkeys(problems)),
            hint=INIT_HINT,
        )
    return kinds
