"""Inpainting backends: pixels outside the hole stay bit-identical; the LaMa code path runs a TorchScript
module scripted here (no LaMa weights exist offline)."""

import hashlib

import numpy as np
import pytest
import torch

from animation_lora.backends.inpainting import (
    LamaInpainter,
    OpenCVInpainter,
    PatchMatchInpainter,
    make_inpainter,
)
from animation_lora.backends.pose import make_pose_estimator


def scene():
    y, x = np.mgrid[:90, :120]
    img = np.dstack([(x * 2) % 256, (y * 2) % 256, ((x + y) * 3) % 256]).astype(np.uint8)
    hole = np.zeros((90, 120), bool)
    hole[30:50, 40:70] = True
    return img, hole


@pytest.mark.parametrize(
    "inpainter",
    [
        OpenCVInpainter("telea"),
        OpenCVInpainter("ns"),
        PatchMatchInpainter(),
        OpenCVInpainter("telea", working_size=32),
    ],
)
def test_only_the_hole_changes(inpainter):
    img, hole = scene()
    broken = img.copy()
    broken[hole] = 0
    out = inpainter(broken, hole)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], broken[~hole])
    assert (
        np.abs(out[hole].astype(int) - img[hole]).mean() < np.abs(broken[hole].astype(int) - img[hole]).mean()
    )


class MeanFill(torch.nn.Module):
    """Stands in for LaMa's TorchScript: fills the hole with the image's mean colour."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean = (image * (1 - mask)).sum(dim=(2, 3), keepdim=True) / (1 - mask).sum(dim=(2, 3), keepdim=True)
        return image * (1 - mask) + mean * mask


def test_lama_code_path_with_a_scripted_module(tmp_path):
    path = tmp_path / "big-lama.pt"
    torch.jit.script(MeanFill()).save(str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    lama = make_inpainter({"backend": "lama", "lama": {"model_path": str(path), "sha256": digest}})
    img, hole = scene()
    img = img[:87, :117].copy()  # not a multiple of 8: padded for the model, cropped back
    hole = hole[:87, :117]
    out = lama(img, hole)
    assert out.shape == img.shape and np.array_equal(out[~hole], img[~hole])
    assert len({tuple(v) for v in out[hole]}) == 1  # one mean colour


def test_a_code_running_file_loads_only_with_its_hash_or_an_explicit_opt_out(tmp_path, caplog):
    path = tmp_path / "big-lama.pt"
    torch.jit.script(MeanFill()).save(str(path))
    with pytest.raises(ValueError, match=r"`inpainting\.lama\.sha256` is not set: .*' is TorchScript"):
        LamaInpainter.from_path(str(path))
    with pytest.raises(ValueError, match=r"sha256 [0-9a-f]{64}, not the 00ff in `inpainting\.lama\.sha256`"):
        LamaInpainter.from_path(str(path), sha256="00ff")
    LamaInpainter.from_path(str(path), sha256="unverified")  # the user's own choice, by name, logged
    assert "without checking it (`inpainting.lama.sha256: unverified`)" in caplog.text
    config = tmp_path / "rtmpose.py"
    config.write_text("import os; os.system('echo ran')\n")  # an MMPose config is Python
    with pytest.raises(ValueError, match=r"`pose\.estimator\.mmpose\.config_sha256` is not set"):
        make_pose_estimator({"backend": "mmpose", "mmpose": {"config": str(config), "checkpoint": str(path)}})


def test_lama_without_its_model_names_the_parameter():
    with pytest.raises(FileNotFoundError, match=r"inpainting\.lama\.model_path.*'/no/big-lama\.pt'"):
        LamaInpainter.from_path("/no/big-lama.pt")
    with pytest.raises(ValueError, match="Unknown OpenCV inpainting method"):
        OpenCVInpainter("fast")
