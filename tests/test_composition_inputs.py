"""What the composition pipeline reads before it composes: the typed `composition` parameters and the
`extra_loras` folder. Every bad input is an error naming its YAML path or its file."""

import copy

import pytest
import torch
import yaml
from kedro.io import DatasetError
from safetensors.torch import save_file

from animation_lora.composition.lora_set import gather
from animation_lora.composition.parameters import Composition, Scoring
from animation_lora.datasets import LoraInputFolderDataset
from animation_lora.lora_format import LoraFile
from animation_lora.params import parse
from animation_lora.pipeline_registry import all_pipelines
from tests.conftest import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_composition.yml").read_text())["composition"]


def composition_params(values: dict) -> Composition:
    return parse(Composition, values, "composition")


def scoring_params(values: dict) -> Scoring:
    return parse(Scoring, values, "composition.scoring")


def test_kedro_builds_the_composition_block_before_the_run_and_names_a_bad_key():
    from kedro.validation.parameter_validator import ParameterValidator

    validator = ParameterValidator({"composition": all_pipelines()["composition"]})
    built = validator.validate_raw_params({"composition": BASE, "probes": {}})
    assert isinstance(built["composition"], Composition) and built["composition"].sampling.steps == 10
    with pytest.raises(Exception, match=r"Parameter 'composition'.*`sampling.stepz`: unknown key"):
        validator.validate_raw_params({"composition": edited(sampling__stepz=4)})


def edited(**changes) -> dict:
    """The base parameters with `section.key=value` changes."""
    params = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, key = path.split("__")
        node = params
        for part in parents:
            node = node[part]
        node[key] = value
    return params


def test_the_base_parameters_parse_into_typed_blocks():
    params = composition_params(BASE)
    assert params.sampling.steps == 10 and params.sampling.negative_prompt == "blurry, lowres"
    assert params.strategies == ["base", "solo", "merge", "fused", "switch", "composite", "regional"]
    assert params.regional.inside == ["character", "pose", "expression"] and params.regional.box[3] == 1.0
    assert params.weight_search.ranges["background"] == [0.7, 0.9]
    assert params.scoring.thresholds.character == 0.6


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sampling__stepz": 4}, r"`composition\.sampling\.stepz`: unknown key; known keys: .*\bsteps\b"),
        ({"negative_prompt": "blurry"}, r"`composition\.negative_prompt`: unknown key"),
        ({"extra_loras": {}}, r"`composition\.extra_loras`: unknown key"),
        ({"strategies": ["merge", "mix"]}, r"`composition\.strategies\.1`: Input should be 'base', 'solo'"),
        ({"sampling__scheduler": "plms"}, r"`composition\.sampling\.scheduler`: Input should be 'ddim'"),
        ({"sampling__steps": "10"}, r"`composition\.sampling\.steps`: Input should be a valid integer"),
        (
            {"weight_search__ranges": {"background": [0.7]}},
            r"`composition\.weight_search\.ranges\.background`",
        ),
        (
            {"scoring__thresholds": {"character": 0.6}},
            r"`composition\.scoring\.thresholds\.background`: missing",
        ),
    ],
)
def test_a_bad_parameter_names_its_yaml_path(changes, message):
    with pytest.raises(ValueError, match=message):
        composition_params(edited(**changes))


def test_the_scoring_block_alone_names_its_full_path():
    with pytest.raises(ValueError, match=r"`composition\.scoring\.clip_modle`: unknown key"):
        scoring_params({**BASE["scoring"], "clip_modle": "ViT-B-16"})


def test_a_missing_or_empty_extra_loras_folder_is_no_lora(tmp_path):
    assert LoraInputFolderDataset(str(tmp_path / "missing")).load() == {}
    (tmp_path / ".gitkeep").write_text("")
    assert LoraInputFolderDataset(str(tmp_path)).load() == {}


def test_a_bad_file_in_the_extra_loras_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"garbage, not a safetensors header")
    with pytest.raises(DatasetError, match=r"broken\.safetensors' is not a readable LoRA \.safetensors file"):
        LoraInputFolderDataset(str(tmp_path)).load()
    (tmp_path / "broken.safetensors").unlink()
    (tmp_path / "pose.ckpt").write_bytes(b"pickle")
    with pytest.raises(DatasetError, match=r"\['pose\.ckpt'\]: only LoRA \.safetensors files are read"):
        LoraInputFolderDataset(str(tmp_path)).load()


def test_the_extra_loras_folder_reads_each_file_by_name(tmp_path):
    save_file(
        {"lora_unet_x.alpha": torch.tensor(4.0)},
        str(tmp_path / "pose.safetensors"),
        metadata={"modelspec.trigger_phrase": "running"},
    )
    loras = LoraInputFolderDataset(str(tmp_path)).load()
    assert list(loras) == ["pose"] and loras["pose"].trigger == "running"
    with pytest.raises(DatasetError, match="read-only"):
        LoraInputFolderDataset(str(tmp_path)).save({})


def test_weights_must_name_loaded_loras_and_extra_names_must_not_clash():
    import torch

    tensors = {"lora_unet_x.lora_down.weight": torch.zeros(1, 1)}
    lora = LoraFile(tensors, {"modelspec.trigger_phrase": "marco"})
    trained = {"character": lora, "background": LoraFile({}, {})}
    lora_set = gather(trained, {"pose": lora}, {"background": 0.8})
    assert lora_set.weights == {"character": 1.0, "background": 0.8, "pose": 1.0}
    assert lora_set.triggers == {"character": "marco", "background": "background", "pose": "marco"}
    with pytest.raises(ValueError, match=r"`composition\.weights` names LoRA\(s\) \['expression'\] that are"):
        gather(trained, {}, {"expression": 0.6})
    with pytest.raises(ValueError, match=r"\['character\.safetensors'\] in `extra_loras` have the name of a"):
        gather(trained, {"character": lora}, {})
    with pytest.raises(ValueError, match=r"Weight 2\.5 of LoRA 'pose' is outside"):
        gather(trained, {"pose": lora}, {"pose": 2.5})
