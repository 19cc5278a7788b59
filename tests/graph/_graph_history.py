"""A history folded from hand-made events, with the records they anchor (no chain)."""

from __future__ import annotations

import hashlib
from typing import Any

from proml_cli.history import History, build
from proml_cli.ledger import ChainEvent
from proml_cli.record import DecisionRecord, FileEntry, Record, RunRecord

ACTOR = "0x" + "ab" * 20
#: Names a policy may hold that every format must escape.
NASTY = 'we"ird|<b>#1`&\\name'


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Chain:
    """Events in chain order, one block each, and the records they anchor."""

    def __init__(self) -> None:
        self.events: list[ChainEvent] = []
        self.records: dict[str, Record | None] = {}

    def emit(self, name: str, *, same_tx: bool = False, **args: Any) -> None:
        """One event; with ``same_tx``, in the previous event's transaction."""
        last = self.events[-1] if self.events else None
        if same_tx and last is not None:
            block, index = last.block, last.log_index + 1
        else:
            block, index = (last.block + 1 if last else 1), 0
        self.events.append(
            ChainEvent(
                name, block, 1_700_000_000 + block, "0x" + f"{block:064x}", index, args, dict(args)
            )
        )

    def kind(self, name: str, states: list[str], transitions: dict[str, tuple[str, str]]) -> None:
        self.emit(
            "KindDefined",
            kind=name,
            states=states,
            initial=0,
            registerRoles=["dev"],
            consumable=[states[-1]],
        )
        for t, (src, dst) in transitions.items():
            self.emit(
                "TransitionDefined",
                kind=name,
                transition=t,
                sources=[src],
                target=dst,
                roles=["dev"],
            )

    def run(
        self,
        step: str,
        products: list[tuple[str, str]],
        materials: list[tuple[str, str]] = (),
        moves: list[tuple[str, str, str]] = (),
        states: list[str] | None = None,
    ) -> None:
        def entry(artefact: str, text: str) -> FileEntry:
            return FileEntry(
                f"{artefact}.bin", digest(text), f"bafy{digest(text)[:20]}", 1, "file", artefact
            )

        record = RunRecord(
            "p",
            step,
            ("python", f"{step}.py"),
            ".",
            "t",
            "t",
            0,
            tuple(entry(a, t) for a, t in materials),
            tuple(entry(a, t) for a, t in products),
            ({"path": "params.yaml", "missing": True},),
            (),
            "sha256:00",
            ACTOR,
        )
        cid = f"bafyrecord{len(self.records)}"
        self.records[cid] = record
        for i, (artefact, text) in enumerate(products):
            self.emit(
                "Registered",
                same_tx=i > 0,
                artefact=artefact,
                digest=digest(text),
                cid=f"bafy{digest(text)[:20]}",
                inputs=[{"artefact": a, "digest": digest(t)} for a, t in materials],
                actor=ACTOR,
                recordCid=cid,
                roles=1,
            )
        for i, (artefact, text, transition) in enumerate(moves):
            self.emit(
                "Transitioned",
                same_tx=bool(products) or i > 0,
                artefact=artefact,
                digest=digest(text),
                transition=transition,
                source=0,
                target=1,
                actor=ACTOR,
                recordCid=cid,
                roles=1,
            )

    def decide(self, artefact: str, text: str, transition: str, note: str) -> None:
        subject = FileEntry(
            f"{artefact}.bin", digest(text), f"bafy{digest(text)[:20]}", 1, "file", artefact
        )
        cid = f"bafyrecord{len(self.records)}"
        self.records[cid] = DecisionRecord("p", transition, subject, note, "t", "sha256:00", ACTOR)
        self.emit(
            "Transitioned",
            artefact=artefact,
            digest=digest(text),
            transition=transition,
            source=0,
            target=1,
            actor=ACTOR,
            recordCid=cid,
            roles=1,
        )

    def history(self) -> History:
        return build(self.events, ["dev"])
