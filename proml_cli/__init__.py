"""proml: tamper-evident, shared provenance for ML datasets and models.

The public API (``import proml_cli as proml``; docs/api.md) is every name in ``__all__``; the
rest of the package is internal. Importing it loads nothing else: each public name is loaded when
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from proml_cli.capture import RunOutcome
    from proml_cli.content import ContentStore
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
    from proml_cli.settings import Settings
    from proml_cli.verify import Verdict

__version__ = "0.1.0"

#: Every public name, loaded on first use: a bare ``import proml_cli`` (what the ``proml``
#: command's client does) stays cheap.
_LAZY = {
    "Project": ("proml_cli.api", "Project"),
    "StepRun": ("proml_cli.api", "StepRun"),
    "current_step": ("proml_cli.api", "current_step"),
    "log_metrics": ("proml_cli.api", "log_metrics"),
    "log_params": ("proml_cli.api", "log_params"),
    "open_project": ("proml_cli.api", "open_project"),
    "step": ("proml_cli.api", "step"),
    "verify_or_raise": ("proml_cli.api", "verify_or_raise"),
    "Digest": ("proml_cli.digest", "Digest"),
    "Settings": ("proml_cli.settings", "Settings"),
    "BackendUnavailable": ("proml_cli.errors", "BackendUnavailable"),
    "ContentError": ("proml_cli.errors", "ContentError"),
    "ExitCode": ("proml_cli.errors", "ExitCode"),
    "InputError": ("proml_cli.errors", "InputError"),
    "JournalError": ("proml_cli.errors", "JournalError"),
    "LedgerError": ("proml_cli.errors", "LedgerError"),
    "PolicyError": ("proml_cli.errors", "PolicyError"),
    "ProMLError": ("proml_cli.errors", "ProMLError"),
    "RefusedError": ("proml_cli.errors", "RefusedError"),
    "VerificationFailed": ("proml_cli.errors", "VerificationFailed"),
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
