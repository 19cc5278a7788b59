"""The capture policy (``proml.yaml``): its schema, loader, validator and resolved, frozen model."""

from __future__ import annotations

import hashlib
from pathlib import Path

from proml_cli.digest import prefixed
from proml_cli.errors import PolicyError
from proml_cli.ledger import ChainConfig, Kind, Transition
from proml_cli.policy._build import _build
from proml_cli.policy._common import (
    DEFAULT_ROLES,
    DEFAULT_TIMEOUT,
    MAX_POLICY_BYTES,
    MAX_ROLES,
    MAX_STATES,
    MAX_TIMEOUT,
    NAME_MAX_BYTES,
    SUPPORTED_VERSION,
    TEMPLATE_PATH,
    _one_line,
)
from proml_cli.policy._rules import _Checker
from proml_cli.policy._schema import _validate_schema
from proml_cli.policy._yaml import _check_version, _compose
from proml_cli.policy.model import (
    DEFAULT_KINDS,
    Artefact,
    Policy,
    Step,
    StorageConfig,
    kind_fingerprint,
    name_problem,
    render_template,
)

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_ROLES",
    "DEFAULT_TIMEOUT",
    "MAX_POLICY_BYTES",
    "MAX_ROLES",
    "MAX_STATES",
    "MAX_TIMEOUT",
    "NAME_MAX_BYTES",
    "SUPPORTED_VERSION",
    "TEMPLATE_PATH",
    "Artefact",
    "ChainConfig",
    "Kind",
    "Policy",
    "Step",
    "StorageConfig",
    "Transition",
    "kind_fingerprint",
    "load_policy",
    "name_problem",
    "parse_policy",
    "render_template",
]


# --------------------------------------------------------------------------- loading


def load_policy(path: Path, *, source: str | None = None) -> Policy:
    """Read, parse and validate the policy file at ``path``.

    Args:
        path: the policy file; its directory becomes :attr:`Policy.root`.
        source: how to name the file in messages; defaults to ``path`` as given.

    Raises:
        PolicyError: the file cannot be read, is not UTF-8 or breaks a rule; the message is
            one line, ``SOURCE:LINE:COL: dotted.key: reason``.
    """
    where = str(path) if source is None else source
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError as exc:
        raise PolicyError(
            "no such file", path=_one_line(where), hint="run `proml init` to create one"
        ) from exc
    except OSError as exc:
        raise PolicyError(
            _one_line(f"cannot read the policy: {exc.strerror or exc}"), path=_one_line(where)
        ) from exc
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"the policy is larger than {MAX_POLICY_BYTES} bytes", path=_one_line(where)
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n") + 1
        column = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise PolicyError(
            f"the policy is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            path=_one_line(where),
            line=line,
            column=column,
        ) from exc
    return _parse(text, data, where, path.absolute().parent.resolve())


def parse_policy(text: str, *, source: str = "proml.yaml", root: Path) -> Policy:
    """Parse and validate policy text.

    Args:
        text: the YAML text.
        source: how to name the text in messages.
        root: the directory artefact paths are relative to.

    Raises:
        PolicyError: the text breaks a rule; the message is one line,
            ``SOURCE:LINE:COL: dotted.key: reason``.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"the policy is larger than {MAX_POLICY_BYTES} bytes", path=_one_line(source)
        )
    return _parse(text, data, source, root.resolve())


def _parse(text: str, data: bytes, source: str, root: Path) -> Policy:
    """Run every stage and build the policy; stages run in order, each reports its first error."""
    tree = _compose(text, source)
    _check_version(tree)
    doc = _validate_schema(tree)
    checker = _Checker(tree, doc)
    checker.run()
    return _build(
        doc,
        roles=checker.roles,
        kinds=checker.kinds,
        source=source,
        root=root,
        digest=prefixed(hashlib.sha256(data).hexdigest()),
    )
