"""The public API: every name in ``__all__`` is importable and documented, and nothing more."""

from __future__ import annotations

import re
from pathlib import Path

import proml_cli as proml

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def test_every_public_name_resolves() -> None:
    for name in proml.__all__:
        assert getattr(proml, name) is not None, name


def test_every_public_name_is_documented_in_docs_api_md() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    missing = [
        name
        for name in proml.__all__
        if name != "__version__" and not re.search(rf"`{re.escape(name)}\b", text)
    ]
    assert missing == []


def test_every_documented_type_is_public() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\* \*\*`(\w+)`\*\*", text, flags=re.MULTILINE))
    documented |= set(re.findall(r"^### `(\w+)[(`]", text, flags=re.MULTILINE))
    assert documented - {"Project"} <= set(proml.__all__)
