"""Who signs: an explicit ``--as NAME`` always signs as NAME, and every signing command says so.

``PROML_PRIVATE_KEY`` signs only when no account is named; a named account together with the
key of another address is refused (exit 2) before anything runs or is sent. On the real
embedded chain the intern, signing as itself, is then refused by the contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _project import build_project, fork, log_entries, ok, one_error_line, proml

from proml_cli.account import load_signer, resolve_address

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a validated dataset and an 'intern' holding only the trainer role."""
    root = build_project(tmp_path_factory.mktemp("signer") / "project", train=False)
    ok(proml(root, "account", "new", "intern"))
    ok(proml(root, "roles", "grant", "trainer", "intern"))
    return root


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    return fork(base, tmp_path / "project")


def _key(root: Path, name: str) -> str:
    """The hex key of a local account (the embedded default's keystores have no password)."""
    return "0x" + bytes(load_signer(root / ".proml", name, prompt=False).key).hex()


def test_as_intern_with_the_admins_key_in_the_environment_is_refused(project: Path) -> None:
    admin, intern = (resolve_address(project / ".proml", n) for n in ("default", "intern"))
    before = log_entries(project)
    env = {"PROML_PRIVATE_KEY": _key(project, "default")}

    for args in (
        ("transition", "dataset", "deprecate", "--as", "intern"),
        ("run", "--as", "intern", "--", "python", "train.py"),
        ("roles", "grant", "curator", "intern", "--as", "intern"),
    ):
        result = proml(project, *args, env=env)
        assert result.code == 2, str(result)
        assert result.stdout == ""
        line = one_error_line(result.stderr)
        assert intern in line, args
        assert admin in line, args
        assert "PROML_PRIVATE_KEY" in line
        assert _key(project, "default")[2:] not in result.stderr.lower()
    assert not (project / "train.started").exists(), "the command ran"
    assert log_entries(project) == before


def test_an_account_named_in_the_environment_counts_as_named(project: Path) -> None:
    env = {"PROML_PRIVATE_KEY": _key(project, "default"), "PROML_ACCOUNT": "intern"}

    result = proml(project, "transition", "dataset", "deprecate", env=env)

    assert result.code == 2, str(result)
    assert "PROML_PRIVATE_KEY" in one_error_line(result.stderr)


def test_as_intern_signs_as_the_intern_and_the_contract_refuses(project: Path) -> None:
    intern = resolve_address(project / ".proml", "intern")

    result = proml(project, "transition", "dataset", "deprecate", "--as", "intern")

    assert result.code == 1, str(result)
    assert result.stderr.splitlines()[0] == f"signing as {intern} (account 'intern')"
    line = one_error_line(result.stderr)
    assert "the ledger refused" in line
    assert intern in line


def test_as_intern_with_the_interns_own_key_signs_as_the_intern(project: Path) -> None:
    intern = resolve_address(project / ".proml", "intern")
    env = {"PROML_PRIVATE_KEY": _key(project, "intern")}

    result = proml(project, "transition", "dataset", "deprecate", "--as", "intern", env=env)

    assert result.code == 1, str(result)
    assert result.stderr.splitlines()[0].startswith(f"signing as {intern} (account 'intern'")


def test_the_environment_key_signs_when_no_account_is_named(project: Path) -> None:
    admin = resolve_address(project / ".proml", "default")
    env = {"PROML_PRIVATE_KEY": _key(project, "default")}

    result = ok(proml(project, "transition", "dataset", "deprecate", "--json", env=env))

    assert result.stderr.splitlines()[0] == f"signing as {admin} (PROML_PRIVATE_KEY)"
    assert log_entries(project)[0]["actor"] == admin


def test_run_as_the_intern_records_the_intern(project: Path) -> None:
    intern = resolve_address(project / ".proml", "intern")

    result = proml(project, "run", "--as", "intern", "--", "python", "train.py")

    assert result.code == 0, str(result)
    assert f"signing as {intern} (account 'intern')" in result.stderr
    newest = log_entries(project)[0]
    assert (newest["artefact"], newest["actor"]) == ("model", intern)
