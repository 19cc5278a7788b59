"""Tests for the capture policy: loading, defaults, step matching and the bad-policy corpus."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proml_cli.errors import ExitCode, InputError, PolicyError
from proml_cli.policy import (
    DEFAULT_KINDS,
    DEFAULT_ROLES,
    MAX_POLICY_BYTES,
    TEMPLATE_PATH,
    Kind,
    Policy,
    Transition,
    kind_fingerprint,
    load_policy,
    name_problem,
    parse_policy,
    render_template,
)

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "tests" / "data" / "policies"
BAD = POLICIES / "bad"
GOOD = POLICIES / "good"
EXPECTED: dict[str, str] = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))

# Pinned: the ledger compares these with what was registered on-chain, so a change here
# means every deployed project sees its built-in kinds as different.
DATASET_FINGERPRINT = "sha256:a5d7e34271baf8c4286ee7290fbaa58d4cb063f0975acccab9bd3bb2616b02ad"
MODEL_FINGERPRINT = "sha256:5892b45abf72adef31d843b3e74c485d01ad981079b59d3f2e0aaa0b32347f54"

STEPS = """\
version: 1
project: demo
artefacts:
  train-set: {kind: dataset, path: data/train.csv}
  model: {kind: model, path: models/model.pkl}
steps:
  any-python:
    command: python
    uses: {train-set: }
  train:
    command: python train.py
    uses: {train-set: }
    produces: [model]
  train-fast:
    command: [python, train.py, --fast]
    uses: {train-set: }
    produces: [model]
"""


def _parse(text: str, tmp_path: Path) -> Policy:
    return parse_policy(text, source="proml.yaml", root=tmp_path)


# --------------------------------------------------------------------------- good policies


def test_minimal_policy_gets_every_default() -> None:
    policy = load_policy(GOOD / "minimal.yaml")

    assert policy.project == "minimal"
    assert policy.chain.backend == "embedded"
    assert policy.chain.url is None
    assert policy.chain.confirmations == 1
    assert policy.storage.backend == "embedded"
    assert policy.storage.ipfs is None
    assert policy.storage.cid_version == 1
    assert policy.roles == DEFAULT_ROLES
    assert dict(policy.kinds) == dict(DEFAULT_KINDS)
    assert dict(policy.artefacts) == {}
    assert dict(policy.steps) == {}


def test_load_policy_records_source_root_and_digest() -> None:
    path = GOOD / "minimal.yaml"
    policy = load_policy(path)

    assert policy.source == str(path)
    assert policy.root == GOOD.resolve()
    assert policy.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_policy(path, source="proml.yaml").source == "proml.yaml"


def test_parse_policy_digest_matches_load_policy(tmp_path: Path) -> None:
    text = (GOOD / "full.yaml").read_text(encoding="utf-8")
    loaded = load_policy(GOOD / "full.yaml")
    parsed = parse_policy(text, root=tmp_path)

    assert parsed.digest == loaded.digest
    assert parsed.source == "proml.yaml"
    assert parsed.root == tmp_path.resolve()


def test_full_policy_resolves_every_section() -> None:
    policy = load_policy(GOOD / "full.yaml")

    assert policy.chain.backend == "rpc"
    assert policy.chain.url == "https://rpc.consortium.example:8545"
    assert policy.chain.confirmations == 12
    assert policy.storage.backend == "ipfs"
    assert policy.storage.ipfs == "http://127.0.0.1:5001"
    assert policy.storage.cid_version == 0
    # Declared roles first, then those the (untouched) built-in model kind needs.
    assert policy.roles == ("data-admin", "labeller", "developer", "verifier", "auditor")

    dataset = policy.kinds["dataset"]
    assert dataset.states == ("raw", "labelled", "validated", "rejected")
    assert dataset.register == ("data-admin", "labeller")
    assert dataset.transitions["label"] == Transition("label", ("raw",), "labelled", ("labeller",))
    assert list(dataset.transitions) == ["label", "validate", "reject"]
    assert policy.kinds["model"] is DEFAULT_KINDS["model"]
    assert policy.kinds["report"].consumable == ()
    assert list(policy.kinds) == ["dataset", "model", "report"]

    raw = policy.artefacts["raw-data"]
    assert raw.path == "data/raw"
    assert raw.allow_symlinks is True
    assert raw.description == "transactions export from the vendor"
    assert policy.artefacts["train-set"].path == "data/train.csv"

    label = policy.steps["label"]
    assert label.command == ("python", "-m", "labeller", "--batch")
    assert dict(label.uses) == {"raw-data": ("raw",)}
    assert dict(label.fires) == {"raw-data": "label"}
    assert label.produces == ()

    train = policy.steps["train"]
    assert train.command == ("python", "train.py", "--config", "conf/train settings.yaml")
    assert dict(train.uses) == {"train-set": ("validated",)}
    assert train.produces == ("fraud-model",)
    assert train.params == ("params.yaml", "conf/*.yaml")
    assert train.metrics == ("metrics/**/*.json",)
    assert train.capture_git is True
    assert train.capture_environment is False

    evaluate = policy.steps["evaluate"]
    assert dict(evaluate.uses) == {"fraud-model": ("trained",), "train-set": ("validated",)}
    assert evaluate.capture_git is False
    assert evaluate.capture_environment is True


def test_anchors_and_text_keys() -> None:
    policy = load_policy(GOOD / "anchors.yaml")

    assert policy.project == "2024.q1"
    switch = policy.kinds["switch"]
    assert switch.states == ("on", "off", "1")
    assert switch.register == DEFAULT_ROLES
    assert set(switch.transitions) == {"on", "off"}
    assert set(policy.steps) == {"1"}
    assert dict(policy.steps["1"].fires) == {"lamp": "on"}
    # An unquoted date is read as text, not refused as a date.
    assert policy.artefacts["lamp"].description == "2024-01-01"


def test_template_loads_and_renders(tmp_path: Path) -> None:
    template = TEMPLATE_PATH.read_text(encoding="utf-8")
    policy = parse_policy(template, root=tmp_path)
    assert policy.project == "my-project"
    assert policy.steps

    rendered = render_template("fraud-detection")
    assert parse_policy(rendered, root=tmp_path).project == "fraud-detection"
    assert rendered.replace("fraud-detection", "my-project", 1) == template


def test_render_template_refuses_a_bad_project_name() -> None:
    with pytest.raises(InputError, match="invalid project name 'Fraud Detection'"):
        render_template("Fraud Detection")


def test_example_loads() -> None:
    policy = load_policy(REPO / "proml.yaml.example")
    assert policy.chain.backend == "rpc"
    assert policy.storage.backend == "ipfs"
    assert set(policy.kinds) == {"dataset", "model", "report"}


def test_policy_objects_are_immutable() -> None:
    policy = load_policy(GOOD / "full.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.project = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.steps["x"] = policy.steps["train"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.steps["train"].uses["x"] = ()  # type: ignore[index]
    hash(policy.kinds["dataset"])
    hash(policy.steps["train"])


# --------------------------------------------------------------------------- defaults


def test_default_kinds_pass_their_own_rules(tmp_path: Path) -> None:
    """Writing the built-in kinds out as user kinds loads and gives the same fingerprints."""
    kinds = {
        kind.name: {
            "states": list(kind.states),
            "initial": kind.initial,
            "register": list(kind.register),
            "consumable": list(kind.consumable),
            "transitions": {
                t.name: {"from": list(t.sources), "to": t.target, "roles": list(t.roles)}
                for t in kind.transitions.values()
            },
        }
        for kind in DEFAULT_KINDS.values()
    }
    text = json.dumps({"version": 1, "project": "demo", "roles": ["x"], "kinds": kinds})
    with pytest.raises(PolicyError, match="unknown role 'data-admin'"):
        _parse(text, tmp_path)

    text = json.dumps({"version": 1, "project": "demo", "roles": DEFAULT_ROLES, "kinds": kinds})
    policy = _parse(text, tmp_path)

    for name, kind in DEFAULT_KINDS.items():
        assert kind_fingerprint(policy.kinds[name]) == kind_fingerprint(kind)
    # With both built-in kinds overridden, no role is added: their roles must be declared.
    assert policy.roles == DEFAULT_ROLES


def test_default_kind_roles_are_added_when_left_out(tmp_path: Path) -> None:
    policy = _parse("version: 1\nproject: demo\nroles: [operator, developer]\n", tmp_path)
    assert policy.roles == ("operator", "developer", "data-admin", "verifier", "auditor")


def test_overriding_a_default_kind_drops_only_its_roles(tmp_path: Path) -> None:
    text = """\
version: 1
project: demo
roles: [curator]
kinds:
  model:
    states: [made, good]
    initial: made
    register: [curator]
    consumable: [good]
    transitions:
      bless: {from: [made], to: good, roles: [curator]}
"""
    policy = _parse(text, tmp_path)
    assert policy.roles == ("curator", "data-admin", "developer")
    assert policy.kinds["model"].states == ("made", "good")
    assert policy.kinds["dataset"] is DEFAULT_KINDS["dataset"]


def test_default_kinds_fingerprints_are_pinned() -> None:
    assert kind_fingerprint(DEFAULT_KINDS["dataset"]) == DATASET_FINGERPRINT
    assert kind_fingerprint(DEFAULT_KINDS["model"]) == MODEL_FINGERPRINT


def test_fingerprint_ignores_set_order_but_not_state_order() -> None:
    base = DEFAULT_KINDS["dataset"]
    reordered = Kind(
        name=base.name,
        states=base.states,
        initial=base.initial,
        register=tuple(reversed(base.register)),
        consumable=base.consumable,
        transitions={
            t.name: Transition(t.name, tuple(reversed(t.sources)), t.target, t.roles)
            for t in reversed(list(base.transitions.values()))
        },
    )
    assert kind_fingerprint(reordered) == kind_fingerprint(base)

    swapped = dataclasses.replace(base, states=tuple(reversed(base.states)))
    assert kind_fingerprint(swapped) != kind_fingerprint(base)
    retargeted = dataclasses.replace(
        base,
        transitions={**base.transitions, "reject": Transition("reject", ("raw",), "rejected", ())},
    )
    assert kind_fingerprint(retargeted) != kind_fingerprint(base)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", kind_fingerprint(base))


# --------------------------------------------------------------------------- lookups


def test_match_step_takes_the_longest_prefix(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)

    assert policy.match_step(["python", "train.py"]).name == "train"
    assert policy.match_step(["python", "train.py", "--epochs", "3"]).name == "train"
    assert policy.match_step(["python", "train.py", "--fast", "-v"]).name == "train-fast"
    assert policy.match_step(["python", "other.py"]).name == "any-python"
    assert policy.match_step(("python",)).name == "any-python"


def test_match_step_compares_whole_tokens(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)
    with pytest.raises(InputError) as info:
        policy.match_step(["python3", "train.py"])
    assert info.value.diagnosis == "no step in proml.yaml matches the command python3 train.py"
    assert info.value.hint is not None
    assert "train (python train.py)" in info.value.hint
    assert "train-fast (python train.py --fast)" in info.value.hint
    assert "--step NAME" in info.value.hint


def test_match_step_by_name(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)
    assert policy.match_step(["python3", "anything"], name="train-fast").name == "train-fast"
    with pytest.raises(InputError) as info:
        policy.match_step(["python", "train.py"], name="trian")
    assert info.value.diagnosis == "unknown step 'trian' in proml.yaml (did you mean 'train'?)"
    assert info.value.exit_code == ExitCode.USAGE


def test_match_step_without_command_or_steps(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)
    with pytest.raises(InputError, match="no command to run"):
        policy.match_step([])
    empty = _parse("version: 1\nproject: demo\n", tmp_path)
    with pytest.raises(InputError) as info:
        empty.match_step(["make", "all"])
    assert info.value.hint == "declare a step for this command in proml.yaml"


def test_match_step_messages_stay_on_one_line(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)
    with pytest.raises(InputError) as info:
        policy.match_step(["echo", "two\nlines"])
    assert "\n" not in info.value.diagnosis


def test_artefact_path_is_absolute_and_inside_root(tmp_path: Path) -> None:
    policy = _parse(STEPS, tmp_path)
    path = policy.artefact_path("train-set")
    assert path.is_absolute()
    assert path == tmp_path.resolve() / "data" / "train.csv"
    assert policy.kind_of("model") is DEFAULT_KINDS["model"]
    with pytest.raises(InputError) as info:
        policy.artefact_path("nope")
    assert info.value.diagnosis == "unknown artefact 'nope' in proml.yaml (known: model, train-set)"
    assert info.value.hint == "artefacts: train-set, model"


# --------------------------------------------------------------------------- the bad corpus


def _corpus() -> list[str]:
    return sorted(p.name for p in BAD.glob("*.yaml"))


def test_corpus_and_expectations_match() -> None:
    assert _corpus() == sorted(EXPECTED)
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize("name", _corpus())
def test_bad_policy_gives_its_one_line_message(name: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(BAD / name, source=f"bad/{name}")
    error = info.value
    assert error.diagnosis == EXPECTED[name]
    assert str(error) == error.diagnosis
    assert "\n" not in error.diagnosis
    assert "Traceback" not in error.diagnosis
    assert error.exit_code == ExitCode.USAGE
    where = f"bad/{name}" + (f":{error.line}:{error.column}" if error.line else "")
    assert error.diagnosis.startswith(where + ": ")


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "proml.yaml", source="proml.yaml")
    assert info.value.diagnosis == "proml.yaml: no such file"
    assert info.value.hint == "run `proml init` to create one"


def test_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"^proml\.yaml: cannot read the policy: "):
        load_policy(tmp_path, source="proml.yaml")


def test_oversized_policy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "proml.yaml"
    path.write_bytes(b"version: 1\nproject: demo\n" + b"#" * MAX_POLICY_BYTES)
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "proml.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\nproject: demo\n")
    assert load_policy(path).project == "demo"


def test_policy_copied_elsewhere_gets_that_root(tmp_path: Path) -> None:
    shutil.copy(GOOD / "full.yaml", tmp_path / "proml.yaml")
    policy = load_policy(tmp_path / "proml.yaml")
    assert policy.artefact_path("fraud-model") == tmp_path.resolve() / "models" / "fraud.pkl"


# --------------------------------------------------------------------------- properties


@given(st.text(max_size=40))
def test_name_problem_agrees_with_the_rule(name: str) -> None:
    is_valid = bool(re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name)) and len(name.encode()) <= 32
    assert (name_problem(name) is None) == is_valid


def _diagnosis(text: str) -> str | None:
    """Return the error a text gives, or None if it loads; anything else propagates."""
    try:
        parse_policy(text, root=Path("/nonexistent"))
    except PolicyError as exc:
        return exc.diagnosis
    return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_loads_or_fails_on_one_line(text: str) -> None:
    diagnosis = _diagnosis(text)
    assert diagnosis is None or "\n" not in diagnosis


_FULL_LINES = (GOOD / "full.yaml").read_text(encoding="utf-8").splitlines(keepends=True)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(_FULL_LINES) - 1),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["", " ", "-", ":", "[", "]", "{", "'", "x", "Z", "\t", "\n", "é", "&a", "*a"]),
)
def test_mutated_policy_loads_or_fails_on_one_line(line: int, column: int, insert: str) -> None:
    """Damage one character of a good policy: either it still loads or the error is one line."""
    lines = list(_FULL_LINES)
    target = lines[line]
    column = min(column, len(target))
    lines[line] = target[:column] + insert + target[column + 1 :]
    diagnosis = _diagnosis("".join(lines))
    if diagnosis is not None:
        assert "\n" not in diagnosis
        assert re.match(r"proml\.yaml(:\d+:\d+)?: ", diagnosis)
