"""`--env=studio` lists every missing checkpoint first; the base env (embedded backends) has none."""

import pytest
from kedro.config import OmegaConfigLoader

from animation_lora.backends.weights import configured_checkpoints, missing_checkpoints
from animation_lora.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT


def parameters(env: str) -> dict:
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def test_only_the_selected_backend_counts():
    block = {"backend": "sam2", "sam2": {"checkpoint": "/m/sam2.pt", "prompter": {}},
             "lama": {"model_path": "/m/lama.pt"}}
    assert configured_checkpoints(block, "segmentation") == [("segmentation.sam2.checkpoint", "/m/sam2.pt")]


def test_studio_lists_every_missing_checkpoint_and_base_none(tmp_path):
    studio = parameters("studio")
    missing = dict(missing_checkpoints(studio))
    assert {"segmentation.sam2.checkpoint", "embedding.clip.checkpoint", "captioning.qwen2_vl.model_path",
            "inpainting.lama.model_path", "diffusion.sd15.path"} <= set(missing)
    assert missing["segmentation.sam2.checkpoint"] == studio["segmentation"]["sam2"]["checkpoint"]
    assert missing_checkpoints(parameters("base")) == []


def test_the_hook_names_them_all_at_once():
    from kedro.pipeline import Node, Pipeline

    from animation_lora.hooks import CheckpointsHook

    studio = parameters("studio")

    class Catalog:
        def load(self, name):
            return studio[name[len("params:"):]]

    pipeline = Pipeline([Node(lambda a, b: None, ["params:segmentation", "params:inpainting"], None)])
    both = r"`inpainting.lama.model_path` is .*`segmentation.sam2.checkpoint`"
    with pytest.raises(FileNotFoundError, match=both):
        CheckpointsHook().before_pipeline_run(pipeline, Catalog())
