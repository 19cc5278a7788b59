"""proml: tamper-evident, shared provenance for ML datasets and models."""

from proml_cli.errors import (
    BackendUnavailable,
    ExitCode,
    InputError,
    LedgerError,
    PolicyError,
    ProMLError,
    VerificationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "ExitCode",
    "InputError",
    "LedgerError",
    "PolicyError",
    "ProMLError",
    "VerificationFailed",
    "__version__",
]
