"""Contract tests for `proml hash`: JSON on stdout, one error line on stderr, no web3 import."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from proml_cli._cli.app import app

runner = CliRunner()


def test_json_for_a_file(tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    target.write_bytes(b"hello world\n")
    result = runner.invoke(app, ["hash", "--json", str(target)])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {
        "schema_version": document["schema_version"],
        "path": str(target),
        "type": "file",
        "size": 12,
        "sha256": hashlib.sha256(b"hello world\n").hexdigest(),
        "cid": "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
    }
    assert isinstance(document["schema_version"], int)
    assert result.stderr == ""


def test_json_cid_version_0(tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    target.write_bytes(b"hello world\n")
    result = runner.invoke(app, ["hash", "--cid-version", "0", "--json", str(target)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["cid"] == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_json_for_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "empty-dir"
    root.mkdir()
    result = runner.invoke(app, ["hash", "--json", "--cid-version", "0", str(root)])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["type"] == "directory"
    assert document["size"] == 0
    assert document["sha256"] == hashlib.sha256(b"").hexdigest()
    assert document["cid"] == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    assert set(document) == {"schema_version", "path", "type", "size", "sha256", "cid"}


def test_human_output(tmp_path: Path) -> None:
    target = tmp_path / "[red]x"
    target.write_bytes(b"")
    result = runner.invoke(app, ["hash", str(target)])
    assert result.exit_code == 0
    assert "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" in result.stdout
    assert str(target) in result.stdout
    assert result.stderr == ""


def test_missing_path_is_exit_2_with_one_stderr_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    result = runner.invoke(app, ["hash", "--json", str(missing)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("proml: error: ")
    assert str(missing) in lines[0]


def test_symlink_is_refused_without_the_flag(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to("real")
    refused = runner.invoke(app, ["hash", "--json", str(tmp_path / "link")])
    assert refused.exit_code == 2
    assert refused.stdout == ""
    allowed = runner.invoke(app, ["hash", "--json", "--allow-symlinks", str(tmp_path / "link")])
    assert allowed.exit_code == 0
    assert json.loads(allowed.stdout)["size"] == 1


def test_bad_cid_version_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    result = runner.invoke(app, ["hash", "--cid-version", "2", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_hash_does_not_import_web3(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"data\n")
    script = textwrap.dedent(
        """
        import sys
        from proml_cli._cli.app import app
        try:
            app(["hash", "--json", sys.argv[1]])
        except SystemExit as done:
            assert done.code in (0, None), done.code
        banned = [m for m in ("web3", "eth_account", "eth_tester", "eth") if m in sys.modules]
        print("BANNED=" + ",".join(banned), file=sys.stderr)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cid"].startswith("bafkrei")
    assert "BANNED=\n" in result.stderr


def test_python_m_proml_cli_hash(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"hello world\n")
    result = subprocess.run(
        [sys.executable, "-m", "proml_cli", "hash", "--json", str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sha256"] == hashlib.sha256(b"hello world\n").hexdigest()
