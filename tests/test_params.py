"""Typed parameter blocks and backend arguments: every mistake names its YAML path."""

from dataclasses import field
from typing import Literal

import pytest

from animation_lora.backends.factory import backend_factory
from animation_lora.params import block, parse


@block
class Inner:
    patience: int = 10


@block
class Outer:
    rate: float = 0.1
    mode: Literal["fast", "slow"] = "fast"
    names: list[str] = field(default_factory=list)
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_a_good_block_parses_with_defaults_and_ints_as_floats():
    got = parse(Outer, {"rate": 1, "inner": {"patience": 3}}, "training.search")
    assert got == Outer(rate=1.0, inner=Inner(patience=3)) and isinstance(got.rate, float)
    assert parse(Outer, None, "x") == Outer()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"rat": 1}, r"`training.search.rat`: unknown key; known keys: rate, mode, names, limit, inner"),
        ({"inner": {"patienc": 1}}, r"`training.search.inner.patienc`: unknown key; known keys: patience"),
        ({"rate": "0.1"}, r"`training.search.rate`: Input should be a valid number \(got '0.1'\)"),
        ({"mode": "medium"}, r"`training.search.mode`: Input should be 'fast' or 'slow'"),
        ({"inner": {"patience": 2.5}}, r"`training.search.inner.patience`: Input should be a valid integer"),
        ({"limit": True}, r"`training.search.limit`: Input should be a valid integer"),
        ({"names": "a, b"}, r"`training.search.names`: Input should be a valid list"),
        ([1, 2], r"`training.search` must be a mapping"),
    ],
)
def test_mistakes_name_the_yaml_path(values, message):
    with pytest.raises(ValueError, match=message):
        parse(Outer, values, "training.search")


class Widget:
    def __init__(self, size: int = 3, device: str = "cpu"):
        self.size, self.device = size, device


def test_backend_arguments_name_capability_backend_key():
    make = backend_factory("segmentation", {"widget": Widget})
    assert make({"backend": "widget", "widget": {"size": 5}}).size == 5
    with pytest.raises(
        ValueError, match=r"`segmentation.widget.sise`: unknown key; known keys: size, device"
    ):
        make({"backend": "widget", "widget": {"sise": 5}})
    with pytest.raises(ValueError, match=r"`segmentation.widget.size`: Input should be a valid integer"):
        make({"backend": "widget", "widget": {"size": "5"}})
    with pytest.raises(ValueError, match=r"`segmentation.gadget`: unknown key; known keys: backend, widget"):
        make({"backend": "widget", "gadget": {}})
    with pytest.raises(ValueError, match=r"Unknown segmentation backend 'sam3'; choose one of widget"):
        make({"backend": "sam3"})


def test_the_shipped_backend_parameters_are_all_valid():
    """conf/base's backend blocks build (the embedded ones) or at least pass the argument check."""
    import yaml

    from animation_lora.backends.captioning import make_captioner
    from animation_lora.backends.embedding import make_embedder
    from animation_lora.backends.inpainting import make_inpainter
    from tests.conftest import PROJECT_ROOT

    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters.yml").read_text())
    assert make_captioner(conf["captioning"]).name == "template"
    assert make_inpainter(conf["inpainting"]).name == "opencv_telea"
    assert make_embedder(conf["embedding"]).name == "mobilenet_v2"


def node(data, outer: Outer, backend: dict, inner: Inner | None = None) -> None:
    """A node function: its parameter blocks come parsed from their annotations."""


def test_the_hook_parses_each_annotated_block_with_the_input_name_as_its_path():
    from animation_lora.params import parse_inputs

    values = {"data": object(), "params:training.search": {"rate": 2}, "params:segmentation": {"backend": "x"},
              "params:inner": {"patience": 1}}
    listed = ["data", "params:training.search", "params:segmentation", "params:inner"]
    parsed = parse_inputs(node, listed, values)
    assert parsed == {"params:training.search": Outer(rate=2.0), "params:inner": Inner(patience=1)}
    assert parse_inputs(node, dict(zip(["data", "outer", "backend", "inner"], listed)), values) == parsed
    with pytest.raises(ValueError, match=r"`training.search.inner.patienc`: unknown key"):
        parse_inputs(node, listed, {**values, "params:training.search": {"inner": {"patienc": 1}}})


def test_every_node_parameter_is_a_typed_block_or_a_backend_block():
    """No node of the project reads a raw parameter dict: a block is parsed from its annotation; what stays a
    mapping is a backend block (`backend:` + its arguments, checked by `make_<capability>`) or a name map."""
    from typing import get_type_hints

    import yaml

    from animation_lora.params import block_type, parameter_arguments
    from animation_lora.pipeline_registry import all_pipelines
    from tests.conftest import PROJECT_ROOT, deep_merge

    conf = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters*.yml")):
        conf = deep_merge(conf, yaml.safe_load(path.read_text()) or {})

    def at(path: str):
        value = conf
        for key in path.split("."):
            value = value[key]
        return value

    raw = []
    for pipeline in all_pipelines().values():
        for n in pipeline.nodes:
            typed = parameter_arguments(n.func, n._inputs)
            hints = get_type_hints(n.func)
            arguments = n._inputs if isinstance(n._inputs, dict) else dict(zip(
                [a for a in n.func.__code__.co_varnames[: n.func.__code__.co_argcount]], n.inputs))
            for argument, name in arguments.items():
                if not name.startswith("params:") or name in typed:
                    continue
                value = at(name[len("params:"):])
                if not (isinstance(value, dict) and "backend" in value) and hints.get(argument) != dict[str, str]:
                    raw.append(f"{n.name}: `{argument}` <- {name} ({hints.get(argument)})")
                assert block_type(hints.get(argument)) is None
    assert not raw, "node parameters read as raw mappings:\n" + "\n".join(raw)
