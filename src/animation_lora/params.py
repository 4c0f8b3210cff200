"""Typed parameters: each YAML parameter block is a dataclass decorated with `block`, validated when it is
built, so an unknown key or a wrong type is an error that names the key (`max_step`) instead of a bare
`KeyError` or `TypeError` deep in a node. Validation is pydantic's, in strict mode (YAML gives native types:
`keep_tokens: "3"` is refused, as sd-scripts refuses it).

A node names its blocks in its annotations (`def ingest(film, sampling: FrameSampling)` for the input
`params:preprocessing.sampling`): Kedro's own parameter validation builds each block once, before the run
starts (`FrameSampling(**values)`), and hands the node the instance; its error names the parameter
(`Parameter 'preprocessing.sampling': ...`). Library code builds blocks with `parse(cls, values, path)`,
whose errors name the whole YAML path (`background.temporal_fill.max_step`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from annotated_types import Ge, Interval
from pydantic import ConfigDict, TypeAdapter, ValidationError

T = TypeVar("T")
Count = Annotated[int, Ge(1)]  # one or more (a size, a number of steps): 0 or less is refused, never replaced
Share = Annotated[float, Interval(ge=0.0, lt=1.0)]  # a fraction of a whole that leaves some of it
Cosine = Annotated[float, Interval(ge=-1.0, le=1.0)]


class BlockError(ValueError):
    """What is wrong with a block's values: (key path relative to the block, problem) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"`{where}`: {problem}" for where, problem in problems))

    def within(self, path: str) -> BlockError:
        return BlockError([(f"{path}.{where}", problem) for where, problem in self.problems])


def block(cls: type[T]) -> type[T]:
    """Decorator: a dataclass of one parameter block, validated strictly when built, unknown keys refused,
    nested blocks built from their mappings."""
    cls = dataclasses.dataclass(cls)
    generated = cls.__init__

    @functools.wraps(generated)
    def __init__(self, *args, **values):
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise BlockError([(unknown[0], f"unknown key; known keys: {', '.join(known)}")])
        given = set(known[: len(args)]) | set(values)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in given
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise BlockError([(missing[0], "missing")])
        generated(self, *args, **values)
        _validate(self)

    cls.__init__ = __init__
    cls.__parameter_block__ = True
    return cls


def block_type(annotation: Any) -> type | None:
    """The `@block` dataclass an annotation names (`X` or `X | None`), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        found = [a for a in get_args(annotation) if a is not type(None)]
        annotation = found[0] if len(found) == 1 else None
    return annotation if getattr(annotation, "__parameter_block__", False) else None


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def _validate(instance: Any) -> None:
    """Check every field against its annotation (pydantic, strict; ints become floats where floats are asked
    for) and build nested blocks from mappings; all problems at once."""
    problems = []
    for f in dataclasses.fields(instance):
        annotation, value = _field_types(type(instance))[f.name], getattr(instance, f.name)
        nested = block_type(annotation)
        optional = nested is not None and nested is not annotation
        items = block_type(get_args(annotation)[0]) if get_origin(annotation) is list else None
        if items is not None and isinstance(value, list):  # a list of blocks: each built from its mapping
            built = [_item(items, v, f"{f.name}[{k}]") for k, v in enumerate(value)]
            bad = [p for b in built if isinstance(b, BlockError) for p in b.problems]
            problems += bad
            if not bad:
                object.__setattr__(instance, f.name, built)
            continue
        try:
            if nested is not None and isinstance(value, Mapping):
                value = nested(**value)
            elif not (nested is not None and isinstance(value, nested) or value is None and optional):
                value = _adapter(annotation).validate_python(value)
        except BlockError as err:
            problems += err.within(f.name).problems
        except ValidationError as err:
            problems += [(".".join([f.name, *map(str, e["loc"])]), f"{e['msg']} (got {e['input']!r})")
                         for e in err.errors()]
        else:
            object.__setattr__(instance, f.name, value)
    if problems:
        raise BlockError(problems)


def _item(cls: type, value: Any, where: str) -> Any:
    """One item of a list of blocks built from its mapping, or the BlockError naming it (`items[2].x`)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        return BlockError([(where, f"must be a mapping of keys to values, not {type(value).__name__}")])
    try:
        return cls(**value)
    except BlockError as err:
        return err.within(where)


def parse(cls: type[T], values: Mapping[str, Any] | None, path: str) -> T:
    """`values` (a parameter block) as an instance of the `@block` dataclass `cls`; errors name `path.key`."""
    if isinstance(values, cls):
        return values
    if values is not None and not isinstance(values, Mapping):
        raise ValueError(
            f"Invalid parameters: `{path}` must be a mapping of keys to values, not {type(values).__name__}"
        )
    try:
        return cls(**dict(values or {}))
    except BlockError as err:
        raise ValueError(f"Invalid parameters: {err.within(path)}") from None


URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def secrets_in(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The parameter paths whose value is a URL carrying a password (`postgresql://user:pw@host/db`):
    parameters are logged (MLflow, kedro-viz), so a secret must come from the environment instead."""
    found = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += secrets_in(value, path + ".")
        elif isinstance(value, str) and URL_WITH_PASSWORD.match(value):
            found.append(path)
    return found


def unknown_runtime_params(runtime: Mapping[str, Any], known: set[str]) -> list[str]:
    """The `--params` keys no node reads: a path is known when it is a parameter a node reads, lies inside
    one (`preprocessing.sampling.every_n_frames`) or holds one (`preprocessing`)."""
    def paths(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in tree.items():
            path = f"{prefix}{key}"
            out += paths(value, path + ".") if isinstance(value, Mapping) and value else [path]
        return out

    def is_known(path: str) -> bool:
        return any(path == k or path.startswith(k + ".") or k.startswith(path + ".") for k in known)

    return [p for p in paths(runtime) if not is_known(p)]


def describe_errors(err: ValidationError, path: str) -> str:
    lines = []
    for e in err.errors():
        where = ".".join([path, *map(str, e["loc"])])
        lines.append(f"`{where}`: {e['msg']} (got {e['input']!r})")
    return "; ".join(lines)


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
        raise ValueError(
            f"Invalid parameters: `{path}.{unknown[0]}`: unknown key; known keys: {', '.join(known)}"
        )
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
