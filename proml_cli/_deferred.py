"""Keep py_ecc's BLS12-381 code out of the process until something actually runs it.

Two dependencies import it eagerly though proml never uses it on its normal path:

* eth-account imports eth-keyfile, whose ``keyfile`` module imports py_ecc's BLS12-381 (for
  V4 keystores) and builds its pairing tables at import: ~0.4 s on every command that touches
  the chain (``python -X importtime``). proml decrypts its V3 keystores itself
  (:mod:`proml_cli._keystore`), and eth-account calls into eth-keyfile only to encrypt or
  decrypt a keystore.
* py-evm imports its BLS12-381 precompiles (Prague) with the rest: ~0.2 s more. Only a
  contract calling addresses 0x0b..0x11 runs them, and the ledger contract never does.

:func:`install` puts small stand-ins for those modules in :data:`sys.modules` before the real
ones are imported. Each stand-in exposes the same names; a function is a thin wrapper that
imports the real module the first time it is called, so behaviour is unchanged (the tests run
both the keystore functions and a BLS precompile through them). Nothing is done when the real
modules are imported already, or when they are not installed.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["install"]

_KEYFILE_FUNCTIONS = (
    "create_keyfile_json",
    "decode_keyfile_json",
    "extract_key_from_keyfile",
    "load_keyfile",
)
#: Each BLS12-381 precompile py-evm's ``eth.precompiles`` imports, and its real module.
_BLS_PRECOMPILES = {
    "bls12_g1_add": "bls12_381_g1",
    "bls12_g1_msm": "bls12_381_g1",
    "bls12_map_fp_to_g1": "bls12_381_g1",
    "bls12_g2_add": "bls12_381_g2",
    "bls12_g2_msm": "bls12_381_g2",
    "bls12_map_fp2_to_g2": "bls12_381_g2",
    "bls12_pairing_check": "bls12_381_pairing",
}
_BLS_PACKAGE = "eth.precompiles.bls12_381"


def install() -> None:
    """Install the stand-ins (idempotent; a no-op for modules already imported)."""
    _defer_keyfile()
    _defer_bls_precompiles()


def _locations(name: str) -> list[str] | None:
    """The directories of package ``name``, found without importing it or its parents."""
    top, *rest = name.split(".")
    spec = importlib.machinery.PathFinder.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    locations = list(spec.submodule_search_locations)
    for part in rest:
        spec = importlib.machinery.PathFinder.find_spec(part, locations)
        if spec is None or not spec.submodule_search_locations:
            return None
        locations = list(spec.submodule_search_locations)
    return locations


def _stand_in_package(name: str) -> types.ModuleType | None:
    """An empty package module whose submodules still load from the real package's directory."""
    locations = _locations(name)
    if locations is None:
        return None
    package = types.ModuleType(name, f"Stand-in for {name} (see proml_cli._deferred).")
    package.__path__ = locations
    package.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    package.__spec__.submodule_search_locations = locations
    package.__package__ = name
    return package


@functools.cache
def _real_keyfile() -> types.ModuleType:
    """eth-keyfile's real ``keyfile`` module, loaded beside the stand-in on first use."""
    locations = _locations("eth_keyfile")
    spec = importlib.machinery.PathFinder.find_spec("eth_keyfile.keyfile", locations)
    if spec is None or spec.loader is None:  # pragma: no cover - eth-keyfile is a dependency
        raise ImportError("eth_keyfile.keyfile")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keyfile_wrapper(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real_keyfile(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _keyfile_attribute(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_real_keyfile(), name)


def _package_attribute(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("eth-keyfile")
    return _keyfile_attribute(name)


def _defer_keyfile() -> None:
    if "eth_keyfile" in sys.modules or "eth_keyfile.keyfile" in sys.modules:
        return
    package = _stand_in_package("eth_keyfile")
    if package is None:
        return
    keyfile = types.ModuleType("eth_keyfile.keyfile", "Stand-in (see proml_cli._deferred).")
    keyfile.__package__ = "eth_keyfile"
    keyfile.KDFType = Literal["pbkdf2", "scrypt"]  # type: ignore[attr-defined]
    for name in _KEYFILE_FUNCTIONS:
        wrapper = _keyfile_wrapper(name)
        setattr(keyfile, name, wrapper)
        setattr(package, name, wrapper)
    keyfile.__getattr__ = _keyfile_attribute  # type: ignore[method-assign]
    package.__getattr__ = _package_attribute  # type: ignore[method-assign]
    package.keyfile = keyfile  # type: ignore[attr-defined]
    sys.modules["eth_keyfile"] = package
    sys.modules["eth_keyfile.keyfile"] = keyfile


def _precompile_wrapper(name: str, module: str) -> Callable[[Any], Any]:
    def call(computation: Any) -> Any:
        real = importlib.import_module(f"{_BLS_PACKAGE}.{module}")
        return getattr(real, name)(computation)

    call.__name__ = call.__qualname__ = name
    return call


def _defer_bls_precompiles() -> None:
    if "eth.precompiles" in sys.modules or _BLS_PACKAGE in sys.modules:
        return
    package = _stand_in_package(_BLS_PACKAGE)
    if package is None:
        return
    for name, module in _BLS_PRECOMPILES.items():
        setattr(package, name, _precompile_wrapper(name, module))
    sys.modules[_BLS_PACKAGE] = package
