"""Typed parameter blocks and backend arguments: every mistake names its YAML path."""

import inspect
from dataclasses import field
from typing import Literal, get_type_hints

import pytest

from animation_lora.backends.factory import backend_factory
from animation_lora.params import block, block_type, parse


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
    """A node function: Kedro builds its parameter blocks from their annotations."""


def test_kedro_builds_each_annotated_block_once_and_names_the_parameter():
    from kedro.pipeline import Node, Pipeline
    from kedro.validation.parameter_validator import ParameterValidator

    pipeline = Pipeline([Node(node, ["data", "params:training.search", "params:segmentation", "params:inner"],
                              None, name="typed_node")])
    validator = ParameterValidator({"p": pipeline})
    raw = {"training": {"search": {"rate": 2, "inner": {"patience": 4}}}, "segmentation": {"backend": "x"},
           "inner": {"patience": 1}}
    built = validator.validate_raw_params(raw)
    assert built["training"]["search"] == Outer(rate=2.0, inner=Inner(patience=4))
    assert built["inner"] == Inner(patience=1) and built["segmentation"] == {"backend": "x"}
    raw["training"]["search"]["inner"] = {"patienc": 1}
    with pytest.raises(Exception, match=r"Parameter 'training.search'.*`inner.patienc`: unknown key"):
        validator.validate_raw_params(raw)
    with pytest.raises(ValueError, match=r"`rate`: Input should be a valid number"):
        Outer(rate="fast")  # built directly, a block checks itself too


def test_every_node_parameter_is_a_typed_block_or_a_backend_block():
    """No node of the project reads a raw parameter dict: Kedro builds each block from the node's annotation;
    what stays a mapping is a backend block (`backend:` + its arguments, checked by `make_<capability>`) or a
    name map."""
    import yaml
    from kedro.validation.type_extractor import TypeExtractor

    from animation_lora.pipeline_registry import all_pipelines
    from tests.conftest import PROJECT_ROOT, deep_merge

    conf = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters*.yml")):
        conf = deep_merge(conf, yaml.safe_load(path.read_text()) or {})

    def at_path(tree: dict, path: str):
        for key in path.split("."):
            tree = tree[key] if isinstance(tree, dict) else getattr(tree, key)
        return tree

    def at(path: str):
        return at_path(conf, path)

    typed = TypeExtractor(all_pipelines()).extract_types_from_pipelines()
    raw = []
    for pipeline in all_pipelines().values():
        for n in pipeline.nodes:
            hints = get_type_hints(n.func)
            listed = [n._inputs] if isinstance(n._inputs, str) else n._inputs
            arguments = listed if isinstance(listed, dict) else dict(zip(inspect.signature(n.func).parameters,
                                                                         listed))
            for argument, name in arguments.items():
                key = name[len("params:"):]
                if not name.startswith("params:") or key in typed:
                    continue
                value = at(key)
                backend = isinstance(value, dict) and "backend" in value
                if not backend and hints.get(argument) != dict[str, str]:
                    raw.append(f"{n.name}: `{argument}` <- {name} ({hints.get(argument)})")
    assert len(typed) >= 15 and all(block_type(t) for t in typed.values())
    from kedro.validation.parameter_validator import ParameterValidator

    studio = {}
    for path in sorted((PROJECT_ROOT / "conf" / "studio").glob("parameters*.yml")):
        studio = deep_merge(studio, yaml.safe_load(path.read_text()) or {})
    sdxl = yaml.safe_load((PROJECT_ROOT / "conf" / "studio-sdxl.yml").read_text())["run"]["params"]
    # every block of conf/base, conf/studio and the SDXL run config (conf/studio-sdxl.yml) builds
    for env in (conf, deep_merge(conf, studio), deep_merge(deep_merge(conf, studio), sdxl)):
        built = ParameterValidator(all_pipelines()).validate_raw_params(env)
        assert all(isinstance(at_path(built, key), t) for key, t in typed.items() if block_type(t))
    assert not raw, "node parameters read as raw mappings:\n" + "\n".join(raw)
