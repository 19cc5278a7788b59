"""Local signing accounts: encrypted V3 keystores under ``.proml/keys/``, never printed.

A project can hold several named accounts (one person on the embedded default may act as a
data admin, a developer and a verifier; the example uses that to show a role being enforced).
The active account is chosen with ``--as NAME`` / ``PROML_ACCOUNT`` (default ``default``); a
named account always signs as itself. ``PROML_PRIVATE_KEY`` is accepted for development chains
when no account is named, and is never written anywhere. This module reads no environment
variable: those values arrive in a :class:`proml_cli.settings.Settings`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_cli.errors import InputError
from proml_cli.settings import Settings

DEFAULT_ACCOUNT = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
#: scrypt work factor for keystores made here. eth-account's default (2**18) costs ~1 s on every
#: command; 2**15 keeps a guess costly (~0.1 s each) while a command stays interactive.
SCRYPT_N = 2**15


@dataclass(frozen=True)
class AccountInfo:
    """A stored account: its name, address and keystore file (never the key)."""

    name: str
    address: str
    path: Path


def keys_dir(state_dir: Path) -> Path:
    """Where a project's keystores live."""
    return state_dir / "keys"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InputError(f"invalid account name {name!r} (use [a-z0-9][a-z0-9._-]*, ≤ 32 chars)")


def _password(given: str | None, *, confirm: bool = False, prompt: bool = True) -> str:
    """``given`` (``PROML_KEYSTORE_PASSWORD``), else a hidden prompt on a terminal, else empty.

    An empty password suits the embedded default (the key guards only a local chain), so a
    project on the embedded chain is not prompted (``prompt=False``); keys for a network chain
    get a real one.
    """
    if given is not None:
        return given
    if not prompt or not sys.stdin.isatty():
        return ""
    import getpass

    first = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("repeat the password: ") != first:
        raise InputError("the passwords differ")
    return first


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (no window where others may read it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def create_account(
    state_dir: Path,
    name: str,
    *,
    private_key: bytes | None = None,
    prompt: bool = True,
    password: str | None = None,
) -> AccountInfo:
    """Create (or import, with ``private_key``) an encrypted keystore named ``name``.

    ``password`` encrypts it; None prompts on a terminal when ``prompt`` (else empty).

    Raises:
        InputError: the name is invalid or taken.
    """
    from proml_cli import _deferred

    _deferred.install()
    from eth_account import Account

    _check_name(name)
    path = keys_dir(state_dir) / f"{name}.json"
    if path.exists():
        raise InputError(f"account {name!r} exists already ({path})")
    account = Account.from_key(private_key) if private_key else Account.create()
    keystore = Account.encrypt(
        account.key,
        _password(password, confirm=True, prompt=prompt),
        kdf="scrypt",
        iterations=SCRYPT_N,
    )
    _write_private(path, json.dumps(keystore))
    return AccountInfo(name, str(account.address), path)


def import_keystore(state_dir: Path, name: str, keystore: Path) -> AccountInfo:
    """Import an existing V3 keystore file as ``name`` (it is copied, still encrypted).

    Raises:
        InputError: invalid name, taken name, or not a V3 keystore.
    """
    from eth_utils.address import to_checksum_address

    _check_name(name)
    path = keys_dir(state_dir) / f"{name}.json"
    if path.exists():
        raise InputError(f"account {name!r} exists already ({path})")
    try:
        data = json.loads(keystore.read_text())
        address = str(to_checksum_address("0x" + str(data["address"]).removeprefix("0x")))
        if int(data["version"]) != 3 or "crypto" not in data:
            raise ValueError("not version 3")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{keystore}: not a V3 Ethereum keystore") from exc
    _write_private(path, json.dumps(data))
    return AccountInfo(name, address, path)


def parse_private_key(text: str) -> bytes:
    """A private key from hex text; the text is never echoed in errors.

    Raises:
        InputError: not 32 bytes of hex.
    """
    try:
        raw = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError("that is not a private key (expected 32 bytes of hex)")
    return raw


def list_accounts(state_dir: Path) -> list[AccountInfo]:
    """Every stored account, by name (addresses come from the keystores, no password needed)."""
    from eth_utils.address import to_checksum_address

    found = []
    directory = keys_dir(state_dir)
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        data = read_keystore(path)
        # import_keystore accepts an address with or without 0x (tools write both forms).
        address = "0x" + str(data["address"]).removeprefix("0x")
        found.append(AccountInfo(path.stem, str(to_checksum_address(address)), path))
    return found


def read_keystore(path: Path) -> dict[str, Any]:
    """A stored keystore's JSON, checked to be a V3 keystore (still encrypted).

    Raises:
        InputError: the file is unreadable, not JSON, or not shaped like a V3 keystore.
    """
    shown = _shown(path)
    hint = "restore the keystore from a backup (or import the key again under a new name)"
    try:
        data = json.loads(path.read_bytes())
    except IsADirectoryError:
        raise InputError(f"keystore {shown} is a directory, not a file", hint=hint) from None
    except OSError as exc:
        raise InputError(f"cannot read keystore {shown}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The position of a JSON error is not printed: it could point into key material.
        raise InputError(f"keystore {shown} is not valid JSON (damaged?)", hint=hint) from None
    problem = _keystore_problem(data)
    if problem:
        raise InputError(f"keystore {shown} is not a V3 keystore: {problem}", hint=hint)
    assert isinstance(data, dict)  # noqa: S101 - checked by _keystore_problem
    return data


def _keystore_problem(data: object) -> str | None:
    """What makes ``data`` not a V3 keystore, or None."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    address = data.get("address")
    if not isinstance(address, str) or not re.fullmatch(r"(0x)?[0-9a-fA-F]{40}", address):
        return "'address' is missing or not an address"
    if data.get("version") != 3:
        return "'version' is not 3"
    crypto = data.get("crypto", data.get("Crypto"))
    if not isinstance(crypto, dict):
        return "'crypto' is missing"
    for key in ("cipher", "ciphertext", "kdf", "mac"):
        if not isinstance(crypto.get(key), str):
            return f"'crypto.{key}' is missing"
    for key in ("cipherparams", "kdfparams"):
        if not isinstance(crypto.get(key), dict):
            return f"'crypto.{key}' is missing"
    return None


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def resolve_address(state_dir: Path, who: str) -> str:
    """An address, or the address of the local account named ``who``.

    Raises:
        InputError: neither an address nor a known account name.
    """
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", who):
        from eth_utils.address import to_checksum_address

        return str(to_checksum_address(who))
    for info in list_accounts(state_dir):
        if info.name == who:
            return info.address
    from proml_cli.suggest import did_you_mean

    names = [info.name for info in list_accounts(state_dir)]
    raise InputError(
        f"{who!r} is neither an address nor a local account{did_you_mean(who, names)}",
        hint="proml account list",
    )


@dataclass(frozen=True)
class SignerChoice:
    """The account that signs for this process, and why it was chosen (never the key's bytes).

    Attributes:
        account: the ``eth_account`` ``LocalAccount``.
        source: how it was named: ``account 'NAME'`` or ``PROML_PRIVATE_KEY``.
    """

    account: Any
    source: str

    @property
    def address(self) -> str:
        """The signing address (checksummed)."""
        return str(self.account.address)

    def describe(self) -> str:
        """The line every signing command prints on stderr."""
        return f"signing as {self.address} ({self.source})"


def _key_from_environment(raw: str) -> Any:
    """``PROML_PRIVATE_KEY`` as an account; the value is never echoed, nor chained in errors."""
    from eth_account import Account

    problem = "PROML_PRIVATE_KEY is not a valid private key"
    try:
        key = parse_private_key(raw)
    except InputError:
        raise InputError(problem) from None
    try:
        return Account.from_key(key)
    except (ValueError, TypeError):
        raise InputError(problem) from None


def _keystore_address(path: Path) -> str:
    """The address a keystore declares (readable without its password)."""
    from eth_utils.address import to_checksum_address

    try:
        data = json.loads(path.read_text())
        return str(to_checksum_address("0x" + str(data["address"]).removeprefix("0x")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable V3 keystore") from exc


def select_signer(
    state_dir: Path,
    name: str | None = None,
    *,
    prompt: bool = True,
    settings: Settings | None = None,
) -> SignerChoice:
    """Choose the signing account: a named account always signs as itself.

    ``settings`` carries ``PROML_ACCOUNT``, ``PROML_PRIVATE_KEY`` and
    ``PROML_KEYSTORE_PASSWORD`` as the boundary read them (None: none of them is set).
    ``name`` (``--as``) or ``PROML_ACCOUNT`` names a local account, and that account signs.
    ``PROML_PRIVATE_KEY`` (development chains) is used only when no account is named; named
    together with a key of another address, neither silently wins: that is an error. A key of
    the named account's own address signs without opening the keystore.

    Raises:
        InputError: no such account, a wrong password, an invalid key, or a named account
            whose address differs from ``PROML_PRIVATE_KEY``'s.
    """
    from proml_cli import _deferred

    _deferred.install()  # before eth_account: keeps py_ecc's BLS code out of the process
    from eth_account import Account

    from proml_cli import _keystore

    settings = settings if settings is not None else Settings()
    raw = settings.private_key
    named = name or settings.account
    if raw and not named:
        return SignerChoice(_key_from_environment(raw), "PROML_PRIVATE_KEY")
    name = named or DEFAULT_ACCOUNT
    _check_name(name)
    path = keys_dir(state_dir) / f"{name}.json"
    if not path.exists():
        from proml_cli.suggest import did_you_mean

        names = [info.name for info in list_accounts(state_dir)]
        raise InputError(
            f"no local account {name!r}{did_you_mean(name, names)}",
            hint=f"proml account new {name} (or pick one from `proml account list`)",
        )
    if raw:
        from_env = _key_from_environment(raw)
        declared = _keystore_address(path)
        if str(from_env.address) != declared:
            raise InputError(
                f"account {name!r} is {declared}, but PROML_PRIVATE_KEY is the key of "
                f"{from_env.address}: refusing to guess who signs",
                hint=f"unset PROML_PRIVATE_KEY to sign as {name!r}, or drop --as/PROML_ACCOUNT",
            )
        return SignerChoice(from_env, f"account {name!r}, key from PROML_PRIVATE_KEY")
    keystore = read_keystore(path)
    try:
        key = _keystore.decrypt(keystore, _password(settings.keystore_password, prompt=prompt))
    except _keystore.WrongPasswordError as exc:
        raise InputError(
            f"cannot open keystore {path.name}: wrong password",
            hint="set PROML_KEYSTORE_PASSWORD",
        ) from exc
    except (_keystore.KeystoreError, KeyError, TypeError) as exc:
        # A field of the right type but the wrong content.
        raise InputError(
            f"keystore {_shown(path)} is not a V3 keystore: {exc}",
            hint="restore the keystore from a backup",
        ) from None
    return SignerChoice(Account.from_key(key), f"account {name!r}")


def load_signer(
    state_dir: Path,
    name: str | None = None,
    *,
    prompt: bool = True,
    settings: Settings | None = None,
) -> Any:
    """The ``LocalAccount`` that signs for this process (see :func:`select_signer`).

    Raises:
        InputError: as :func:`select_signer`.
    """
    return select_signer(state_dir, name, prompt=prompt, settings=settings).account
