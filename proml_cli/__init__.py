"""proml: tamper-evident, shared provenance for ML datasets and models.

The public API (``import proml_cli as proml``; docs/api.md) is every name in ``__all__``; the
rest of the package is internal. Importing it loads no chain or store library: the types that
need one are loaded when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proml_cli.api import (
    Project,
    StepRun,
    current_step,
    log_metrics,
    log_params,
    open_project,
    step,
    verify_or_raise,
)
from proml_cli.digest import Digest
from proml_cli.errors import (
    BackendUnavailable,
    ContentError,
    ExitCode,
    InputError,
    JournalError,
    LedgerError,
    PolicyError,
    ProMLError,
    RefusedError,
    VerificationFailed,
)
from proml_cli.settings import Settings

if TYPE_CHECKING:
    from proml_cli.capture import RunOutcome
    from proml_cli.content import ContentStore
    from proml_cli.history import (
        History,
        HistoryStep,
        InputVersion,
        LogEntry,
        RecordDetail,
        StepDetail,
        UsedBy,
        VersionDetail,
        VersionHistory,
    )
    from proml_cli.ledger import Kind, LedgerReader, Transition
    from proml_cli.queries import ArtefactStatus, RoleHolders
    from proml_cli.record import DecisionRecord, FileEntry, RunRecord
    from proml_cli.verify import Verdict

__version__ = "0.1.0"

#: Public names loaded on first use (their modules import the chain's data types).
_LAZY = {
    "ArtefactStatus": ("proml_cli.queries", "ArtefactStatus"),
    "ContentStore": ("proml_cli.content", "ContentStore"),
    "DecisionRecord": ("proml_cli.record", "DecisionRecord"),
    "FileEntry": ("proml_cli.record", "FileEntry"),
    "RunRecord": ("proml_cli.record", "RunRecord"),
    "History": ("proml_cli.history", "History"),
    "Kind": ("proml_cli.ledger", "Kind"),
    "Transition": ("proml_cli.ledger", "Transition"),
    "HistoryStep": ("proml_cli.history", "HistoryStep"),
    "InputVersion": ("proml_cli.history", "InputVersion"),
    "LogEntry": ("proml_cli.history", "LogEntry"),
    "RecordDetail": ("proml_cli.history", "RecordDetail"),
    "StepDetail": ("proml_cli.history", "StepDetail"),
    "UsedBy": ("proml_cli.history", "UsedBy"),
    "VersionDetail": ("proml_cli.history", "VersionDetail"),
    "LedgerReader": ("proml_cli.ledger", "LedgerReader"),
    "RoleHolders": ("proml_cli.queries", "RoleHolders"),
    "RunOutcome": ("proml_cli.capture", "RunOutcome"),
    "Verdict": ("proml_cli.verify", "Verdict"),
    "VersionHistory": ("proml_cli.history", "VersionHistory"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'proml_cli' has no attribute {name!r}")


__all__ = [
    "ArtefactStatus",
    "BackendUnavailable",
    "ContentError",
    "ContentStore",
    "DecisionRecord",
    "Digest",
    "ExitCode",
    "FileEntry",
    "History",
    "HistoryStep",
    "InputError",
    "InputVersion",
    "JournalError",
    "Kind",
    "LedgerError",
    "LedgerReader",
    "LogEntry",
    "PolicyError",
    "ProMLError",
    "Project",
    "RecordDetail",
    "RefusedError",
    "RoleHolders",
    "RunOutcome",
    "RunRecord",
    "Settings",
    "StepDetail",
    "StepRun",
    "Transition",
    "UsedBy",
    "Verdict",
    "VerificationFailed",
    "VersionDetail",
    "VersionHistory",
    "__version__",
    "current_step",
    "log_metrics",
    "log_params",
    "open_project",
    "step",
    "verify_or_raise",
]
