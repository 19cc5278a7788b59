"""Golden CID vectors: public ones from kubo / the UnixFS spec, self-produced ones pinned."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from proml_cli.content import _unixfs, hash_path

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden" / "cids.json"
DOC: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
_PATTERN = bytes(range(251))
_updates: dict[tuple[str, str], str] = {}


def content_of(spec: dict[str, Any]) -> bytes:
    if "text" in spec:
        return str(spec["text"]).encode("utf-8")
    if "pattern" in spec:
        size = int(spec["pattern"])
        return (_PATTERN * (size // len(_PATTERN) + 1))[:size]
    if "zeros" in spec:
        return bytes(int(spec["zeros"]))
    raise AssertionError(f"unknown input {spec}")


def materialize(spec: dict[str, Any], path: Path) -> None:
    if "dir" not in spec:
        path.write_bytes(content_of(spec))
        return
    path.mkdir()
    for name, child in spec["dir"].items():
        materialize(child, path / name)
    numbered = spec.get("numbered")
    if numbered:
        for i in range(1, int(numbered["count"]) + 1):
            name = numbered["name"].format(i=i)
            (path / name).write_bytes(numbered["text"].format(i=i).encode())


def cases() -> list[Any]:
    out = []
    for vector in DOC["vectors"]:
        for version in ("v0", "v1"):
            marks = [pytest.mark.slow] if vector.get("slow") else []
            out.append(pytest.param(vector, version, id=f"{vector['name']}-{version}", marks=marks))
    return out


@pytest.mark.parametrize(("vector", "version"), cases())
def test_golden_cid(
    vector: dict[str, Any], version: str, tmp_path: Path, update_goldens: bool
) -> None:
    target = tmp_path / "input"
    materialize(vector["input"], target)
    cid_version = int(version[1])
    if "layout" in vector:
        layout = dataclasses.replace(_unixfs.DEFAULT_LAYOUT, **vector["layout"])
        cid = str(_unixfs.import_path(target, cid_version, layout=layout).root.cid)
    else:
        cid = hash_path(target, cid_version=cid_version).cid
    expected = vector[version]
    if update_goldens and expected["source"] == "self":
        _updates[(vector["name"], version)] = cid
        _write_updates()
        return
    assert expected["cid"] is not None, "self-produced value missing: run with --update-goldens"
    assert cid == expected["cid"], expected.get("citation", "pinned regression value")


def _write_updates() -> None:
    doc = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for vector in doc["vectors"]:
        for version in ("v0", "v1"):
            new = _updates.get((vector["name"], version))
            if new is not None and vector[version]["source"] == "self":
                vector[version]["cid"] = new
    GOLDEN.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def test_public_vectors_are_cited() -> None:
    for vector in DOC["vectors"]:
        for version in ("v0", "v1"):
            entry = vector[version]
            assert entry["source"] in ("public", "self")
            if entry["source"] == "public":
                assert entry["cid"]
                assert entry["citation"]
