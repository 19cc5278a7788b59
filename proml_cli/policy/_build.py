"""Building the resolved model from a checked document."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from proml_cli.ledger import ChainConfig, Kind
from proml_cli.policy._schema import _CaptureDoc, _ChainDoc, _PolicyDoc, _StorageDoc
from proml_cli.policy.model import Artefact, Policy, Step, StorageConfig

# --------------------------------------------------------------------------- building


def _build(
    doc: _PolicyDoc,
    *,
    roles: tuple[str, ...],
    kinds: Mapping[str, Kind],
    source: str,
    root: Path,
    digest: str,
) -> Policy:
    """Resolve the defaults of a checked document into the public model."""
    chain = doc.chain or _ChainDoc()
    storage = doc.storage or _StorageDoc()
    artefacts = {
        name: Artefact(
            name=name,
            kind=a.kind,
            path=posixpath.normpath(a.path),
            description=a.description,
            allow_symlinks=a.allow_symlinks,
        )
        for name, a in (doc.artefacts or {}).items()
    }
    steps: dict[str, Step] = {}
    for name, s in (doc.steps or {}).items():
        uses = {
            artefact: (
                kinds[artefacts[artefact].kind].consumable if states is None else tuple(states)
            )
            for artefact, states in (s.uses or {}).items()
        }
        capture = s.capture or _CaptureDoc()
        steps[name] = Step(
            name=name,
            command=tuple(s.command),
            uses=MappingProxyType(uses),
            produces=tuple(s.produces or ()),
            fires=MappingProxyType(dict(s.fires or {})),
            params=tuple(posixpath.normpath(p) for p in s.params or ()),
            metrics=tuple(posixpath.normpath(p) for p in s.metrics or ()),
            capture_git=capture.git,
            capture_environment=capture.environment,
        )
    return Policy(
        source=source,
        root=root,
        digest=digest,
        project=doc.project,
        chain=ChainConfig(chain.backend, chain.url, chain.confirmations, float(chain.timeout)),
        storage=StorageConfig(
            storage.backend, storage.ipfs, storage.cid_version, float(storage.timeout)
        ),
        roles=roles,
        kinds=MappingProxyType(dict(kinds)),
        artefacts=MappingProxyType(artefacts),
        steps=MappingProxyType(steps),
    )
