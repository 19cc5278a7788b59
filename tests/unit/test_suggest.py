"""Refusal helpers: close names, and the transitions a state allows or leads through."""

from __future__ import annotations

from proml_cli.policy import DEFAULT_KINDS
from proml_cli.suggest import allowed_from, did_you_mean, path_to


def test_did_you_mean_names_the_closest_choice() -> None:
    assert did_you_mean("modle", ["model", "train-set"]) == " (did you mean 'model'?)"


def test_did_you_mean_lists_the_choices_when_none_is_close() -> None:
    assert did_you_mean("zzz", ["b", "a"]) == " (known: a, b)"
    assert did_you_mean("zzz", []) == ""


def test_allowed_from_lists_the_transitions_of_a_state() -> None:
    model = DEFAULT_KINDS["model"]
    assert allowed_from(model, "trained") == ["evaluate", "reject"]
    assert allowed_from(model, "revoked") == []


def test_path_to_finds_the_shortest_route() -> None:
    model = DEFAULT_KINDS["model"]
    assert path_to(model, "trained", ["approved"]) == ["evaluate", "approve"]
    assert path_to(model, "approved", ["approved"]) == []
    assert path_to(model, "revoked", ["approved"]) == []
