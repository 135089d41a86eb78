"""Readable problem lines from pydantic validation errors, for the user-written files (batch
specs, price tables).

Pydantic's own text ("Input should be a valid integer") names neither the file nor the field the
way a user wrote them. Each problem here becomes one line: `<where>: field `<path>`: <what is
wrong>, got <value> (<its YAML/JSON type>)`, and an unknown field suggests the known ones closest
to it, so a typo reads as a typo.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

import pydantic
import pydantic.fields


class Problems(ValueError):
    """Several problems found by one model validator, each `(field, message, value)`; raised from
    a pydantic validator, it becomes one line per problem."""

    def __init__(self, items: Sequence[tuple[str, str, Any]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message, _ in items))
        self.items = list(items)


NO_VALUE = object()
_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list",
               dict: "a mapping", type(None): "null"}

# Messages for the common error types, written for someone editing YAML or JSON by hand.
_MESSAGES = {
    "missing": "is required",
    "int_type": "must be a whole number (unquoted, e.g. 100)",
    "int_from_float": "must be a whole number (unquoted, e.g. 100)",
    "float_type": "must be a number (unquoted, e.g. 0.5)",
    "bool_type": "must be true or false (unquoted; not a string such as 'false' or 'yes')",
    "string_type": "must be a string",
    "dict_type": "must be a mapping (key: value pairs)",
    "model_type": "must be a mapping (key: value pairs)",
    "model_attributes_type": "must be a mapping (key: value pairs)",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
    "string_too_short": "must not be empty",
}


def describe(value: Any, width: int = 80) -> str:
    """`'0.1' (a string)`: the value as written and its type, cut to `width` characters."""
    text = repr(value)
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"{text} ({_TYPE_NAMES.get(type(value), type(value).__name__)})"


def _walk(model: type[pydantic.BaseModel], loc: Sequence[Any]) -> Any:
    """The annotation (or FieldInfo, for a model field at the end of `loc`) that `loc` points at,
    mapping keys skipped; None when the path leaves the models."""
    current: Any = model
    info = None
    for part in loc:
        while typing.get_origin(current) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[0] if len(args) == 1 else None
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        else:  # a mapping's key: descend to its value type
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current, info = (args[-1] if args else None), None
    return info if info is not None else current


def _field_names(model: type[pydantic.BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the (sub)model at `loc`, for typo suggestions."""
    current = _walk(model, loc)
    if isinstance(current, pydantic.fields.FieldInfo):
        current = current.annotation
    while typing.get_origin(current) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[0] if len(args) == 1 else None
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return [f.alias or name for name, f in current.model_fields.items() if not f.exclude]
    return []


def _num(v: float) -> str:
    """1, 0.05, 1_000_000_000: as a user would write it in YAML."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"{v:_}" if isinstance(v, int) and abs(v) >= 10_000 else f"{v:g}" if isinstance(v, float) else str(v)


def _range(model: type[pydantic.BaseModel], loc: Sequence[Any]) -> str | None:
    """`within 24..168`, `>= 1` or `> 0`: the whole range of the field at `loc`."""
    info = _walk(model, loc)
    if not isinstance(info, pydantic.fields.FieldInfo):
        return None
    bounds = {}
    for m in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(m, name, None) is not None:
                bounds[name] = getattr(m, name)
    lo = ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    hi = ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    if lo and hi and lo[0] == "ge" and hi[0] == "le":
        return f"within {_num(lo[1])}..{_num(hi[1])}"
    ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    parts = [f"{ops[b[0]]} {_num(b[1])}" for b in (lo, hi) if b]
    return " and ".join(parts) or None


def _path(loc: Sequence[Any]) -> str:
    """`models['amazon.nova-lite-v1'].batch.input`: names as dotted, other keys bracketed."""
    out = ""
    for part in loc:
        if isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def problem_lines(exc: pydantic.ValidationError, where: str, model: type[pydantic.BaseModel]) -> list[str]:
    """One line per problem of `exc` (raised validating `model`), each starting with `where`."""
    lines: list[str] = []
    for err in exc.errors():
        loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
        value = err.get("input", NO_VALUE)
        error = ctx.get("error")
        if isinstance(error, Problems):
            for field, message, bad in error.items:
                got = "" if bad is NO_VALUE else f", got {describe(bad)}"
                lines.append(f"{where}: field `{field}`: {message}{got}")
            continue
        path = _path(loc)
        if kind == "extra_forbidden":
            known = _field_names(model, loc[:-1])
            near = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.5)
            hint = f" (did you mean {' or '.join(f'`{n}`' for n in near)}?)" if near else ""
            lines.append(f"{where}: unknown field `{path}`{hint}; known fields: {', '.join(known)}")
            continue
        if kind == "missing":
            lines.append(f"{where}: field `{path}` is required")
            continue
        if kind == "literal_error":
            message = f"must be one of {ctx.get('expected')}"
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
            message = f"must be {_range(model, loc) or f'{op} {next(iter(ctx.values()))}'}"
        elif kind in ("too_long", "too_short") and "actual_length" in ctx:
            # A list's size ("List should have at most 5 items after validation, not 6").
            n = ctx["max_length"] if kind == "too_long" else ctx["min_length"]
            message = f"must have {'at most' if kind == 'too_long' else 'at least'} {n} item{'s' * (n != 1)}, has {ctx['actual_length']}"
        elif kind == "value_error" and error is not None:
            message = str(error)
        else:
            message = _MESSAGES.get(kind) or err["msg"].replace("Input should be", "must be")
        got = "" if value is NO_VALUE else f", got {describe(value)}"
        where_field = f"{where}: field `{path}`" if path else where
        lines.append(f"{where_field}: {message}{got}")
    return lines
