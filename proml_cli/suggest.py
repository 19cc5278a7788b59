"""Refusals that say what would make them pass: close names, and the moves a state allows."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proml_cli.policy import Kind


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest of ``choices``, or the list of them.

    The text is meant to follow a refusal of ``name``; with no close match it lists what exists
    (``(known: a, b)``), and with nothing to choose from it is empty.
    """
    known = sorted(set(choices))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if known:
        return f" (known: {', '.join(known)})"
    return ""


def allowed_from(kind: Kind, state: str) -> list[str]:
    """The transitions of ``kind`` that may fire from ``state``, in the policy's order."""
    return [t.name for t in kind.transitions.values() if state in t.sources]


def path_to(kind: Kind, state: str, wanted: Iterable[str]) -> list[str]:
    """The shortest list of transitions leading from ``state`` into one of ``wanted`` states.

    Empty when ``state`` is already wanted or no sequence of transitions gets there.
    """
    targets = set(wanted)
    if state in targets:
        return []
    frontier: list[tuple[str, list[str]]] = [(state, [])]
    seen = {state}
    while frontier:
        current, moves = frontier.pop(0)
        for transition in kind.transitions.values():
            if current not in transition.sources or transition.target in seen:
                continue
            route = [*moves, transition.name]
            if transition.target in targets:
                return route
            seen.add(transition.target)
            frontier.append((transition.target, route))
    return []
