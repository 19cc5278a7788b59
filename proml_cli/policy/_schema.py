"""Stage 2: the schema (pydantic models of the document, errors with their marks)."""

from __future__ import annotations

import difflib
import shlex
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from proml_cli.policy._common import (
    DEFAULT_TIMEOUT,
    MAX_ROLES,
    MAX_STATES,
    MAX_TIMEOUT,
    _describe,
    _KeyPath,
    _Mark,
    _q,
)
from proml_cli.policy._yaml import _Tree
from proml_cli.policy.model import name_problem

# --------------------------------------------------------------------------- stage 2: schema


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "name", "invalid name {name}: {problem}", {"name": _q(value), "problem": problem}
        )
    return value


def _split_command(value: object) -> object:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "command", "cannot split the command: {why}", {"why": str(exc).lower()}
            ) from exc
    if isinstance(value, list):
        return value
    raise PydanticCustomError("command_type", "expected a command string or a list of tokens")


def _check_command(tokens: list[str]) -> list[str]:
    if not tokens:
        raise PydanticCustomError("command", "the command is empty")
    if not tokens[0]:
        raise PydanticCustomError("command", "the command's first token (the program) is empty")
    return tokens


def _check_cid_version(value: int) -> int:
    if value not in (0, 1):
        raise PydanticCustomError("cid_version", "expected 0 or 1, got {value}", {"value": value})
    return value


_Name = Annotated[str, AfterValidator(_check_name)]
_Command = Annotated[list[str], BeforeValidator(_split_command), AfterValidator(_check_command)]


class _Doc(BaseModel):
    """Schema base: strict types (no "1" for 1), no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _ChainDoc(_Doc):
    backend: Literal["embedded", "rpc"] = "embedded"
    url: str | None = None
    confirmations: Annotated[int, Field(ge=0)] = 1
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT)] = DEFAULT_TIMEOUT


class _StorageDoc(_Doc):
    backend: Literal["embedded", "ipfs"] = "embedded"
    ipfs: str | None = None
    cid_version: Annotated[int, AfterValidator(_check_cid_version)] = 1
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT)] = DEFAULT_TIMEOUT


class _TransitionDoc(_Doc):
    sources: list[_Name] = Field(alias="from", min_length=1)
    to: _Name
    roles: list[_Name] = Field(min_length=1)


class _KindDoc(_Doc):
    states: list[_Name] = Field(min_length=1, max_length=MAX_STATES)
    initial: _Name
    # `register` would shadow ABCMeta.register on the model class.
    registrars: list[_Name] = Field(alias="register", min_length=1)
    consumable: list[_Name]
    transitions: dict[_Name, _TransitionDoc] | None = None


class _ArtefactDoc(_Doc):
    kind: _Name
    path: str
    description: str | None = None
    allow_symlinks: bool = False


class _CaptureDoc(_Doc):
    git: bool = True
    environment: bool = True


class _StepDoc(_Doc):
    command: _Command
    uses: dict[_Name, list[_Name] | None] | None = None
    produces: list[_Name] | None = None
    fires: dict[_Name, _Name] | None = None
    params: list[str] | None = None
    metrics: list[str] | None = None
    capture: _CaptureDoc | None = None


class _PolicyDoc(_Doc):
    version: int
    project: _Name
    chain: _ChainDoc | None = None
    storage: _StorageDoc | None = None
    roles: list[_Name] | None = Field(default=None, max_length=MAX_ROLES)
    kinds: dict[_Name, _KindDoc] | None = None
    artefacts: dict[_Name, _ArtefactDoc] | None = None
    steps: dict[_Name, _StepDoc] | None = None


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _validate_schema(tree: _Tree) -> _PolicyDoc:
    """Validate types and names with pydantic; report the error that comes first in the file."""
    try:
        return _PolicyDoc.model_validate(tree.data)
    except ValidationError as exc:
        found = [(*_schema_error(tree, err), i) for i, err in enumerate(exc.errors())]
    _, mark, path, reason, _ = min(found, key=lambda item: (item[0], item[4]))
    raise tree.fail(path, mark, reason) from None


def _schema_error(tree: _Tree, err: Any) -> tuple[_Mark, _Mark, _KeyPath, str]:
    """Translate one pydantic error into its order, its mark, its key path and our own words."""
    loc: _KeyPath = tuple(err["loc"])
    kind: str = err["type"]
    if loc and loc[-1] == "[key]":
        mark = tree.key_mark(loc[:-1])
        return mark, mark, loc[:-1], str(err["msg"])
    if kind == "missing":
        reason = "required key is missing"
        return tree.missing_order(loc), tree.missing_mark(loc), loc, reason
    if kind == "extra_forbidden":
        allowed = _keys_at(loc[:-1])
        reason = f"unknown key (allowed: {', '.join(allowed)})"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            reason += f"; did you mean {close[0]!r}?"
        mark = tree.key_mark(loc)
        return mark, mark, loc, reason
    mark = tree.value_mark(loc)
    got = _describe(err["input"], tree.raw.get(loc))
    ctx = err.get("ctx") or {}
    if kind in _EXPECTED:
        reason = f"expected {_EXPECTED[kind]}, got {got}"
        if kind == "string_type" and tree.raw.get(loc):
            reason += " (quote it to mean the text)"
    elif kind == "command_type":
        reason = f"expected a command string or a list of tokens, got {got}"
    elif kind == "literal_error":
        reason = f"expected {ctx.get('expected')}, got {got}"
    elif kind == "greater_than_equal":
        reason = f"must be at least {ctx.get('ge')}, got {got}"
    elif kind == "greater_than":
        reason = f"must be more than {ctx.get('gt'):g}, got {got}"
    elif kind == "less_than_equal":
        reason = f"must be at most {ctx.get('le'):g}, got {got}"
    elif kind == "too_short":
        reason = "must not be empty"
    elif kind == "too_long":
        reason = f"too many items: {ctx.get('actual_length')}, at most {ctx.get('max_length')}"
    else:
        reason = str(err["msg"])
    return mark, mark, loc, reason


def _keys_at(loc: _KeyPath) -> list[str]:
    """Return the keys the schema allows in the mapping at ``loc``."""
    node: Any = _PolicyDoc
    for part in loc:
        node = _unwrap_optional(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = {f.alias or n: f for n, f in node.model_fields.items()}
            if part not in fields:
                return []
            node = fields[str(part)].annotation
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]
        else:
            return []
    node = _unwrap_optional(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) == 1 and type(None) in get_args(annotation):
        return args[0]
    return annotation
