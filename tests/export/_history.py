"""A small, complete history built from ledger events and records in a fake store.

A curator prepares a dataset (a run) and validates it (a decision); a trainer trains a model on
it (a run, with params) and evaluates it on the dataset (a run that fires ``evaluate``, with
metrics); a verifier approves it (a decision). The records carry a host name and a user name
that no export may repeat.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from _fakes import FakeStore, sha256

from proml_cli.export.facts import ChainRef, Facts, collect
from proml_cli.history import History, build
from proml_cli.ledger import ChainEvent
from proml_cli.record import DecisionRecord, FileEntry, RunRecord, canonical_bytes

CURATOR = "0x" + "c0" * 20
VERIFIER = "0x" + "5e" * 20
ROLES = ("curator", "trainer", "verifier")
SECRETS = ("build-host-7", "alice-the-user")
CHAIN = ChainRef(chain_id=31337, ledger="0x" + "1e" * 20)

DATASET = b"x,y\n1,0\n2,1\n3,0\n"
MODEL = b"weights: 0.25 0.75\n"
PARAMS = b"lr: 0.1\nlayers:\n  hidden: 4\n"
METRICS = json.dumps({"accuracy": 0.9, "auc": 0.95}).encode()


def _entry(store: FakeStore, path: str, data: bytes, artefact: str | None) -> FileEntry:
    return FileEntry(path, sha256(data), store.put_bytes(data), len(data), "file", artefact)


def _run(store: FakeStore, step: str, t: int, **fields: Any) -> str:
    record = RunRecord(
        project="demo",
        step=step,
        command=("python", f"{step}.py"),
        cwd=".",
        started=f"2026-01-01T00:0{t}:00.000001Z",
        ended=f"2026-01-01T00:0{t}:30Z",
        exit_code=0,
        materials=fields.get("materials", ()),
        products=fields.get("products", ()),
        params=fields.get("params", ()),
        metrics=fields.get("metrics", ()),
        policy_digest="sha256:" + "ab" * 32,
        actor=CURATOR,
        extra={
            "git": {"commit": "f" * 40, "dirty": False},
            "environment": {"hostname": SECRETS[0], "user": SECRETS[1], "proml": "0.1.0"},
        },
    )
    return store.put_bytes(canonical_bytes(record.to_json()))


def _decision(store: FakeStore, transition: str, subject: FileEntry, actor: str) -> str:
    record = DecisionRecord(
        project="demo",
        transition=transition,
        subject=subject,
        note="checked",
        decided="2026-01-01T00:09:00Z",
        policy_digest="sha256:" + "ab" * 32,
        actor=actor,
    )
    return store.put_bytes(canonical_bytes(record.to_json()))


def _event(name: str, block: int, **args: Any) -> ChainEvent:
    return ChainEvent(name, block, 1_767_225_600 + 60 * block, f"0x{block:064x}", 0, args, args)


def _kind(block: int, kind: str, states: list[str], role: str, consumable: str) -> ChainEvent:
    return _event(
        "KindDefined",
        block,
        kind=kind,
        states=states,
        initial=0,
        registerRoles=[role],
        consumable=[consumable],
    )


def _step(
    name: str, block: int, entry: FileEntry, actor: str, record: str, roles: int, **fields: Any
) -> ChainEvent:
    """A step event of ``entry`` (``roles``: the bitmap the event carries)."""
    return _event(
        name,
        block,
        artefact=entry.artefact,
        digest=entry.sha256,
        **fields,
        actor=actor,
        recordCid=record,
        roles=roles,
    )


def _registered(
    block: int, entry: FileEntry, inputs: list[FileEntry], record: str, roles: int
) -> ChainEvent:
    """A curator's registration of ``entry`` made from ``inputs``."""
    used = [{"artefact": i.artefact, "digest": i.sha256} for i in inputs]
    return _step("Registered", block, entry, CURATOR, record, roles, cid=entry.cid, inputs=used)


def _transitioned(
    block: int,
    entry: FileEntry,
    transition: str,
    move: tuple[int, int],
    actor: str,
    record: str,
    roles: int,
) -> ChainEvent:
    """``actor``'s ``transition`` of ``entry`` from state index ``move[0]`` to ``move[1]``."""
    source, target = move
    fields = {"transition": transition, "source": source, "target": target}
    return _step("Transitioned", block, entry, actor, record, roles, **fields)


def history() -> tuple[History, FakeStore]:
    """The history and the store holding its records and contents."""
    store = FakeStore()
    dataset = _entry(store, "data/data.csv", DATASET, "dataset")
    model = _entry(store, "out/model.bin", MODEL, "model")
    params = _entry(store, "params.yaml", PARAMS, None).to_json()
    metrics = _entry(store, "metrics.json", METRICS, None).to_json()
    prepare = _run(store, "prepare", 1, products=(dataset,))
    validate = _decision(store, "validate", dataset, CURATOR)
    train = _run(store, "train", 2, materials=(dataset,), products=(model,), params=(params,))
    evaluate = _run(store, "evaluate", 3, materials=(model, dataset), metrics=(metrics,))
    approve = _decision(store, "approve", model, VERIFIER)
    curator, trainer, verifier = 1, 2, 4
    events = [
        _kind(1, "table", ["raw", "validated"], "curator", "validated"),
        _event(
            "TransitionDefined",
            1,
            kind="table",
            transition="validate",
            sources=["raw"],
            target="validated",
            roles=["curator"],
        ),
        _kind(1, "weights", ["trained", "evaluated", "approved"], "trainer", "approved"),
        _event("ArtefactDefined", 1, artefact="dataset", kind="table"),
        _event("ArtefactDefined", 1, artefact="model", kind="weights"),
        _registered(2, dataset, [], prepare, curator),
        _transitioned(3, dataset, "validate", (0, 1), CURATOR, validate, curator),
        _registered(4, model, [dataset], train, trainer),
        _transitioned(5, model, "evaluate", (0, 1), CURATOR, evaluate, trainer),
        _transitioned(6, model, "approve", (1, 2), VERIFIER, approve, verifier),
    ]
    return build(events, ROLES), store


def policy() -> Any:
    """The few policy fields the facts read."""
    artefacts = {
        "dataset": SimpleNamespace(path="data/data.csv", description="a tiny table"),
        "model": SimpleNamespace(path="out/model.bin", description=None),
    }
    return SimpleNamespace(project="demo", digest="sha256:" + "cd" * 32, artefacts=artefacts)


def facts() -> Facts:
    """The facts of the whole history."""
    found, store = history()
    return collect(history=found, store=store, policy=policy(), chain=CHAIN, proml_version="0.1.0")
