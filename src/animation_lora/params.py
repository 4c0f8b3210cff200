"""Typed parameters: each YAML parameter block is parsed once into a dataclass, so an unknown key or a wrong
type is an error that names its YAML path (`background.temporal_fill.max_step`) instead of a bare
`KeyError` or `TypeError` deep in a node. Validation is pydantic's, in strict mode (YAML gives native types:
`keep_tokens: "3"` is refused, as sd-scripts refuses it)."""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")
# Fields are checked strictly; a dataclass instance is always checked again (it is how a dict arrives).
STRICT = ConfigDict(extra="forbid", strict=True, revalidate_instances="always")


def block(cls: type[T]) -> type[T]:
    """Decorator: a dataclass of one parameter block, validated strictly, unknown keys refused."""
    cls = dataclasses.dataclass(cls)
    cls.__pydantic_config__ = STRICT  # read by pydantic when it validates the dataclass
    return cls


def _unknown_key(path: str, key: str, known: list[str]) -> ValueError:
    return ValueError(f"Invalid parameters: `{path}.{key}`: unknown key; known keys: {', '.join(known)}")


def _build(cls: type[T], values: Any, path: str) -> T:
    """The dataclass from a mapping (nested blocks too); unknown or missing keys named by their path."""
    if isinstance(values, cls):
        return values
    if values is not None and not isinstance(values, Mapping):
        raise ValueError(
            f"Invalid parameters: `{path}` must be a mapping of keys to values, not {type(values).__name__}"
        )
    values, hints = dict(values or {}), get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise _unknown_key(path, unknown[0], known)
    for key, value in values.items():
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, Mapping):
            values[key] = _build(hints[key], value, f"{path}.{key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"Invalid parameters: `{path}.{missing[0]}`: missing")
    return cls(**values)


def describe_errors(err: ValidationError, path: str) -> str:
    lines = []
    for e in err.errors():
        where = ".".join([path, *map(str, e["loc"])])
        lines.append(f"`{where}`: {e['msg']} (got {e['input']!r})")
    return "; ".join(lines)


def parse(cls: type[T], values: Mapping[str, Any] | None, path: str) -> T:
    """`values` (a parameter block) as an instance of the `@block` dataclass `cls`; errors name `path.key`."""
    instance = _build(cls, values, path)
    try:
        return TypeAdapter(cls).validate_python(instance)
    except ValidationError as err:
        raise ValueError(f"Invalid parameters: {describe_errors(err, path)}") from None


def block_type(annotation: Any) -> type | None:
    """The `@block` dataclass an annotation names (`X` or `X | None`), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        found = [a for a in get_args(annotation) if a is not type(None)]
        annotation = found[0] if len(found) == 1 else None
    return annotation if getattr(annotation, "__pydantic_config__", None) is STRICT else None


def parameter_arguments(func: Callable[..., Any], inputs: str | list[str] | dict[str, str] | None,
                        ) -> dict[str, tuple[str, type]]:
    """{input name: (YAML path, block class)} for each `params:<path>` input of a node function whose argument
    is annotated with a `@block` dataclass. `inputs` as the node declares them: one name, a list (positional)
    or {argument: input}."""
    if isinstance(inputs, dict):
        pairs = list(inputs.items())
    else:
        signature = inspect.signature(func).parameters
        names = [n for n, p in signature.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        pairs = list(zip(names, [inputs] if isinstance(inputs, str) else inputs or []))
    hints = get_type_hints(func)
    found = {}
    for argument, name in pairs:
        cls = block_type(hints.get(argument))
        if cls is not None and name.startswith("params:"):
            found[name] = (name[len("params:"):], cls)
    return found


def parse_inputs(func: Callable[..., Any], declared: str | list[str] | dict[str, str] | None,
                 values: Mapping[str, Any]) -> dict[str, Any]:
    """The node's parameter inputs parsed into the blocks its arguments are annotated with (what the
    `TypedParametersHook` hands a node before it runs): errors name the YAML path of the input."""
    return {name: parse(cls, values[name], path)
            for name, (path, cls) in parameter_arguments(func, declared).items() if name in values}


def check_arguments(builder: Callable[..., Any], kwargs: Mapping[str, Any], path: str) -> None:
    """A backend's arguments from YAML, checked against the builder's signature: an unknown key or a value of
    the wrong type names `capability.backend.key`."""
    function = builder.__init__ if inspect.isclass(builder) else builder
    signature = inspect.signature(function)
    known = [
        n
        for n, p in signature.parameters.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise _unknown_key(path, unknown[0], known)
    try:
        hints = get_type_hints(function)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is simply not checked
        hints = {}
    for key, value in kwargs.items():
        if key in hints:
            try:
                TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError as err:
                raise ValueError(f"Invalid parameters: {describe_errors(err, f'{path}.{key}')}") from None
