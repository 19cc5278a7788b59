"""Exports in the ecosystem's formats, written from one set of facts (see :mod:`.facts`).

``slsa`` (in-toto Statement v1 + SLSA Provenance v1), ``prov`` (W3C PROV-JSON), ``cyclonedx``
(CycloneDX 1.6 ML-BOM), ``spdx3`` (SPDX 3.0.1 JSON-LD, AI and Dataset profiles) and
``openlineage`` (RunEvents, JSON Lines). Each format module is a pure function of the facts;
:func:`render` gives the bytes: sorted keys, so the same history gives the same bytes.

``slsa``, ``prov`` and ``cyclonedx`` need nothing beyond proml itself; ``spdx3`` and
``openlineage`` are built with their reference libraries, in the ``export`` extra
(``pip install -e 'PATH/TO/proml[export]'``), imported only when used.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proml_cli.errors import InputError
from proml_cli.export.facts import Facts, collect, gather, select

EXTRA = "export"


@dataclass(frozen=True)
class Format:
    """One export format: how it is built and how its output is laid out.

    Attributes:
        name: the command's FORMAT.
        module, function: ``proml_cli.export.<module>.<function>(facts)`` builds it.
        needs: the third-party package it is built with (None: the standard library).
        stream: JSON Lines, one document per item (otherwise one document, or JSON Lines
            when ``per_version`` and several versions are asked for).
        per_version: the function returns one document per version asked for.
        media_type: what the bytes are.
    """

    name: str
    module: str
    function: str
    needs: str | None = None
    stream: bool = False
    per_version: bool = False
    media_type: str = "application/json"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("slsa", "slsa", "statements", per_version=True),
        Format("prov", "prov", "document"),
        Format("cyclonedx", "cyclonedx", "bom", media_type="application/vnd.cyclonedx+json"),
        Format(
            "spdx3",
            "spdx3",
            "document",
            needs="spdx-python-model",
            media_type="application/spdx+json",
        ),
        Format(
            "openlineage",
            "openlineage",
            "events",
            needs="openlineage-python",
            stream=True,
            media_type="application/x-ndjson",
        ),
    )
}


def builder(name: str) -> Callable[[Facts], Any]:
    """The function that builds format ``name`` from the facts.

    Raises:
        InputError: an unknown format, or its library (the ``export`` extra) is missing.
    """
    from proml_cli.suggest import did_you_mean

    found = FORMATS.get(name)
    if found is None:
        raise InputError(f"unknown export format '{name}'{did_you_mean(name, list(FORMATS))}")
    try:
        module = importlib.import_module(f"proml_cli.export.{found.module}")
    except ImportError as exc:
        raise InputError(
            f"export format '{name}' needs {found.needs or exc.name}, which is not installed",
            hint=f"install proml's {EXTRA!r} extra: pip install -e 'PATH/TO/proml[{EXTRA}]' "
            "(PATH/TO/proml: your clone of proml)",
        ) from exc
    function: Callable[[Facts], Any] = getattr(module, found.function)
    return function


def export(facts: Facts, name: str) -> bytes:
    """Format ``name`` of ``facts``, as bytes (see :func:`render`).

    Raises:
        InputError: an unknown format, or its library (the ``export`` extra) is missing.
    """
    built = builder(name)(facts)
    found = FORMATS[name]
    if found.stream or (found.per_version and len(built) != 1):
        return render_lines(built)
    return render(built[0] if found.per_version else built)


def export_signed(facts: Facts, signer: Any) -> bytes:
    """The ``slsa`` statements of ``facts``, each in a DSSE envelope signed by ``signer``.

    One envelope for one version, JSON Lines of envelopes for several. The payload is the
    statement's :func:`canonical` bytes; see :mod:`proml_cli.export.dsse` for the check.
    """
    from proml_cli.export import dsse, slsa

    envelopes = [dsse.sign(canonical(s), signer) for s in slsa.statements(facts)]
    return render(envelopes[0]) if len(envelopes) == 1 else render_lines(envelopes)


def render(document: Any) -> bytes:
    """One JSON document: sorted keys, two-space indent, UTF-8, a final newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def render_lines(documents: Any) -> bytes:
    """JSON Lines: one compact, key-sorted document per line."""
    return b"".join(canonical(d) + b"\n" for d in documents)


def canonical(document: Any) -> bytes:
    """The compact, key-sorted UTF-8 bytes of ``document`` (what a DSSE envelope signs)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


__all__ = [
    "FORMATS",
    "Format",
    "builder",
    "canonical",
    "collect",
    "export",
    "export_signed",
    "gather",
    "render",
    "render_lines",
    "select",
]
