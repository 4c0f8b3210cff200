"""The SDXL stand-in and the `sdxl` studio backend: the diffusers folder and the single sgm-layout file with
its config folder load offline to the same weights; a single file without its config folder, or a path
that is not there, is an error naming the parameter."""

from __future__ import annotations

import pytest
import torch

from animation_lora.backends.diffusion import SDXL, sdxl
from animation_lora.standins import sdxl as standin


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("standins") / "sdxl"
    assert standin.write(path) == {"diffusion": {"sdxl": {"path": str(path / "diffusers"), "config": None}}}
    return path


def test_folder_and_single_file_load_to_the_same_weights(folder):
    from_folder = sdxl(str(folder / "diffusers"), device="cpu")
    single = standin.single_file_parameters(folder)["diffusion"]["sdxl"]
    assert not list((folder / "config").rglob("*.safetensors"))  # the config folder holds no weights
    from_file = sdxl(**single, device="cpu")
    assert from_folder.architecture == from_file.architecture == SDXL
    assert from_folder.model_hash == from_file.model_hash
    for a, b in ((from_folder.unet, from_file.unet), (from_folder.vae, from_file.vae),
                 (from_folder.text_encoder, from_file.text_encoder)):
        left, right = a.state_dict(), b.state_dict()
        assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)
    # the second encoder (open_clip's layout in the file) gives the pooled embedding SDXL conditions on
    assert from_file.text_encoder.te2.config.hidden_size == standin.TEXT_WIDTHS[1]


def test_a_single_file_needs_its_config_folder_and_paths_are_named(folder):
    single = folder / "sdxl-standin.safetensors"
    with pytest.raises(ValueError, match=r"single file: set `diffusion\.sdxl\.config` to a local diffusers"):
        sdxl(str(single), device="cpu")
    with pytest.raises(FileNotFoundError, match=r"diffusion\.sdxl\.config.*nowhere"):
        sdxl(str(single), config=str(folder / "nowhere"), device="cpu")
    with pytest.raises(FileNotFoundError, match=r"diffusion\.sdxl\.path.*missing\.safetensors"):
        sdxl(str(folder / "missing.safetensors"), device="cpu")
