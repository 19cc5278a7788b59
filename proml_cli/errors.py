"""The project's error types and exit codes: every failure a user can cause is one of these."""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """Process exit codes shared by every command (``run`` returns the child's own code)."""

    OK = 0
    NEGATIVE = 1
    USAGE = 2
    BACKEND_UNAVAILABLE = 3
    NOT_JOURNALED = 125
    CANNOT_EXECUTE = 126
    NOT_FOUND = 127
    INTERRUPTED = 130


class ProMLError(Exception):
    """Base of every error proml reports to a user.

    Attributes:
        exit_code: the process exit code the CLI uses for this error.
        diagnosis: one line saying what is wrong and where.
        hint: optional next step, e.g. the command to run.
    """

    exit_code: ExitCode = ExitCode.NEGATIVE

    def __init__(self, diagnosis: str, *, hint: str | None = None) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.hint = hint

    def diagnostics(self) -> str:
        """Return the human text: the diagnosis, and the hint on a second line if any."""
        if self.hint:
            return f"{self.diagnosis}\nhint: {self.hint}"
        return self.diagnosis


class InputError(ProMLError):
    """Bad usage or input (a path, an argument, a file); nothing was changed."""

    exit_code = ExitCode.USAGE


class PolicyError(InputError):
    """A mistake in the capture policy, located at ``path:line:column``."""

    def __init__(
        self,
        reason: str,
        *,
        path: str,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {key}: {reason}" if key else f"{where}: {reason}"
        super().__init__(text, hint=hint)
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.reason = reason


class LedgerError(ProMLError):
    """The chain refused an operation (a contract rule, e.g. a missing role or a wrong state).

    Attributes:
        contract_error: the contract's custom error name (``MissingRole`` ...), when known.
    """

    exit_code = ExitCode.NEGATIVE

    def __init__(
        self, diagnosis: str, *, hint: str | None = None, contract_error: str | None = None
    ) -> None:
        super().__init__(diagnosis, hint=hint)
        self.contract_error = contract_error


class ContentError(ProMLError):
    """Stored content is missing or does not hash to its identifier."""

    exit_code = ExitCode.NEGATIVE


class ContentNotFoundError(ContentError):
    """A store that answers does not have the content (an IPFS node neither pins nor finds it)."""


class DamagedStoreError(ContentError):
    """A file of the local content store is damaged or replaced (exit 2: local state is bad).

    Still a :class:`ContentError`, so code that heals a bad local block from a node keeps
    doing so; reported on its own, it names the file and points at ``proml fsck``.
    """

    exit_code = ExitCode.USAGE


class VerificationFailed(ProMLError):  # noqa: N818 - the negative answer of `verify`, not a bug
    """The answer to ``verify`` is no; ``reasons`` lists every failed check."""

    exit_code = ExitCode.NEGATIVE

    def __init__(self, diagnosis: str, reasons: Sequence[str], *, hint: str | None = None) -> None:
        super().__init__(diagnosis, hint=hint)
        self.reasons = list(reasons)


class RefusedError(ProMLError):
    """``run`` refused to start the command: an input failed its policy check."""

    exit_code = ExitCode.NEGATIVE

    def __init__(self, diagnosis: str, reasons: Sequence[str], *, hint: str | None = None) -> None:
        super().__init__(diagnosis, hint=hint)
        self.reasons = list(reasons)


class JournalError(ProMLError):
    """The record could not even be written to the local journal (``run`` exits 125)."""

    exit_code = ExitCode.NOT_JOURNALED


class BackendUnavailable(ProMLError):  # noqa: N818 - a state of the world, named as such
    """A chain or IPFS node cannot be reached; the work is kept in the journal."""

    exit_code = ExitCode.BACKEND_UNAVAILABLE
