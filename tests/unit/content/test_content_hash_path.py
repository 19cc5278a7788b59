"""hash_path: one read per file, sha256 equal to hashlib's, the manifest, and refusals."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from proml_cli.content import _unixfs, hash_path
from proml_cli.errors import InputError

TINY = _unixfs.Layout(chunk_size=256, buffer_size=512)


def _pattern(size: int) -> bytes:
    base = bytes(range(251))
    return (base * (size // 251 + 1))[:size]


@pytest.mark.parametrize("size", [0, 1, 1000, 262144, 262145, 3 * 1024 * 1024 + 7])
@pytest.mark.parametrize("version", [0, 1])
def test_file_sha256_and_cid_from_one_pass(tmp_path: Path, size: int, version: int) -> None:
    data = _pattern(size)
    target = tmp_path / "f.bin"
    target.write_bytes(data)
    result = hash_path(target, cid_version=version)
    assert result.type == "file"
    assert result.size == size
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.cid == str(_unixfs.dag_for_bytes(data, version).cid)
    assert result.path == target


def test_small_buffers_give_the_same_answer(tmp_path: Path) -> None:
    data = _pattern(10_000)
    target = tmp_path / "f.bin"
    target.write_bytes(data)
    small = _unixfs.import_path(target, 1, layout=TINY)
    expected = _unixfs.dag_for_bytes(data, 1, layout=TINY)
    assert small.root.cid == expected.cid
    assert small.sha256 == hashlib.sha256(data).hexdigest()


def test_directory_manifest_bytes_are_as_documented(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_bytes(b"hi\n")
    (tmp_path / "d" / "sub" / "b").write_bytes(b"")
    manifest = (
        b"98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4  3  a.txt\n"
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  0  sub/b\n"
    )
    result = hash_path(tmp_path / "d")
    assert result.type == "directory"
    assert result.size == 3
    assert result.sha256 == hashlib.sha256(manifest).hexdigest()


def test_manifest_sorts_by_relative_path_bytes(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    for name in ("a/z", "a\x01", "B", "a.txt"):
        (root / name).write_bytes(name.encode())
    lines = sorted(
        (name.encode(), hashlib.sha256(name.encode()).hexdigest())
        for name in ("a/z", "a\x01", "B", "a.txt")
    )
    manifest = b"".join(f"{h}  {len(n)}  ".encode() + n + b"\n" for n, h in lines)
    assert hash_path(root).sha256 == hashlib.sha256(manifest).hexdigest()


def test_directory_result_is_deterministic_and_parallel_safe(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(60):
        sub = root / f"d{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(_pattern(i * 9000))
    first = hash_path(root)
    assert all(hash_path(root) == first for _ in range(3))
    assert first.size == sum(i * 9000 for i in range(60))


def test_hidden_and_empty_entries_change_the_cid(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a").write_bytes(b"a")
    plain = hash_path(root).cid
    (root / ".hidden").write_bytes(b"")
    with_hidden = hash_path(root).cid
    (root / "empty-dir").mkdir()
    with_empty_dir = hash_path(root).cid
    assert len({plain, with_hidden, with_empty_dir}) == 3


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        hash_path(tmp_path / "nope")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"x")
    target.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        hash_path(target)


def test_symlinks_are_refused_by_default(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(InputError, match="link") as caught:
        hash_path(tmp_path / "link")
    assert str(tmp_path / "link") in caught.value.diagnosis
    root = tmp_path / "d"
    root.mkdir()
    (root / "inner").symlink_to("../real")
    with pytest.raises(InputError, match="symbolic link") as caught:
        hash_path(root)
    assert str(root / "inner") in caught.value.diagnosis


def test_allowed_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    (tmp_path / "link").symlink_to("real")
    followed = hash_path(tmp_path / "link", allow_symlinks=True)
    assert followed.cid == hash_path(tmp_path / "real").cid
    root = tmp_path / "d"
    root.mkdir()
    (root / "inner").symlink_to("../real")
    result = hash_path(root, allow_symlinks=True)
    line = hashlib.sha256(b"../real").hexdigest().encode() + b"  symlink  inner\n"
    assert result.sha256 == hashlib.sha256(line).hexdigest()
    assert result.size == 0
    link = _unixfs.symlink_node(b"../real", 1, None)
    expected = _unixfs.directory_node([_unixfs.DirEntry(b"inner", link.cid, link.tsize)], 1, None)
    assert result.cid == str(expected.cid)


def test_special_files_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        hash_path(root)
    with pytest.raises(InputError, match="not a regular file"):
        hash_path(root / "pipe")


def test_names_with_line_breaks_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "bad\nname").write_bytes(b"")
    with pytest.raises(InputError, match="line break"):
        hash_path(root)


def test_file_changed_while_hashing_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "growing"
    target.write_bytes(_pattern(4096))

    def append_once(done: int) -> None:
        if done == 512:
            with target.open("ab") as extra:
                extra.write(b"more")

    with pytest.raises(InputError, match="changed while it was being hashed"):
        _unixfs.import_path(target, 1, progress=append_once, layout=TINY)


def test_file_replaced_while_hashing_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "swapped"
    target.write_bytes(_pattern(4096))
    other = tmp_path / "other"
    other.write_bytes(_pattern(4096))

    def swap(done: int) -> None:
        if done == 512:
            other.replace(target)

    with pytest.raises(InputError, match="changed"):
        _unixfs.import_path(target, 1, progress=swap, layout=TINY)


def test_progress_reports_a_running_total(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}").write_bytes(_pattern(3000 * (i + 1)))
    seen: list[int] = []
    _unixfs.import_path(root, 1, progress=seen.append, layout=TINY)
    assert seen == sorted(seen)
    assert seen[-1] == sum(3000 * (i + 1) for i in range(5))


def test_memory_stays_flat_in_file_size(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    chunk = _pattern(1024 * 1024)
    with target.open("wb") as out:
        for _ in range(48):
            out.write(chunk)
    tracemalloc.start()
    try:
        hash_path(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Two 4 MiB read buffers and bookkeeping; never the 48 MiB file.
    assert peak < 12 * 1024 * 1024


def test_cid_version_is_checked(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(InputError, match="CID version"):
        hash_path(tmp_path / "f", cid_version=2)
