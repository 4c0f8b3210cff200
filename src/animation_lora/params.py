"""Typed parameters: each YAML parameter block is parsed once into a dataclass, so an unknown key or a wrong
type is an error that names its YAML path (`background.temporal_fill.max_step`) instead of a bare
`KeyError` or `TypeError` deep in a node. Validation is pydantic's, in strict mode (YAML gives native types:
`keep_tokens: "3"` is refused, as sd-scripts refuses it)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping, TypeVar, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")
STRICT = ConfigDict(extra="forbid", strict=True)


def block(cls: type[T]) -> type[T]:
    """Decorator: a dataclass of one parameter block, validated strictly, unknown keys refused."""
    cls = dataclasses.dataclass(cls)
    cls.__pydantic_config__ = STRICT  # read by pydantic when it validates the dataclass
    return cls


def _known_at(cls: type, loc: tuple) -> list[str]:
    """The field names of the (nested) dataclass that a validation error's location points into."""
    for part in loc[:-1]:
        if not dataclasses.is_dataclass(cls):
            return []
        cls = get_type_hints(cls).get(part)
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def describe_errors(err: ValidationError, path: str, known: Callable[[tuple], list[str]]) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not isinstance(p, str) or not p.startswith("function-"))
        where = ".".join([path, *map(str, loc)]) if loc else path
        if e["type"] == "extra_forbidden":
            lines.append(f"`{where}`: unknown key; known keys: {', '.join(sorted(known(loc)))}")
        elif e["type"] == "missing":
            lines.append(f"`{where}`: missing")
        else:
            lines.append(f"`{where}`: {e['msg']} (got {e['input']!r})")
    return "; ".join(lines)


def parse(cls: type[T], values: Mapping[str, Any] | None, path: str) -> T:
    """`values` (a parameter block) as an instance of the `@block` dataclass `cls`; errors name `path.key`."""
    if isinstance(values, cls):
        return values
    if values is not None and not isinstance(values, Mapping):
        raise ValueError(f"Parameters `{path}` must be a mapping of keys to values, not {type(values).__name__}")
    try:
        return TypeAdapter(cls).validate_python(dict(values or {}))
    except ValidationError as err:
        raise ValueError(f"Invalid parameters: {describe_errors(err, path, lambda loc: _known_at(cls, loc))}") from None


def check_arguments(builder: Callable[..., Any], kwargs: Mapping[str, Any], path: str) -> None:
    """A backend's arguments from YAML, checked against the builder's signature: an unknown key or a value of
    the wrong type names `capability.backend.key`."""
    function = builder.__init__ if inspect.isclass(builder) else builder
    signature = inspect.signature(function)
    known = [n for n, p in signature.parameters.items()
             if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(f"Invalid parameters: `{path}.{unknown[0]}`: unknown key; known keys: {', '.join(known)}")
    try:
        hints = get_type_hints(function)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is simply not checked
        hints = {}
    for key, value in kwargs.items():
        if key in hints:
            try:
                TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError as err:
                raise ValueError(f"Invalid parameters: {describe_errors(err, f'{path}.{key}', lambda loc: [])}") from None
