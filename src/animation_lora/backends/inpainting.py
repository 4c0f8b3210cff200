"""Fill the holes characters leave in background layers.

Backends (``inpainting.backend``):
- ``opencv`` (embedded): ``cv2.inpaint``, Telea or Navier-Stokes (`method`).
- ``patchmatch`` (embedded, BSD `patchmatch-cython`): PatchMatch texture synthesis.
- ``lama`` (studio): LaMa's TorchScript model from `inpainting.lama.model_path`, run as simple-lama-inpainting
  runs it (image and mask in [0, 1], padded to a multiple of 8), without its downloader.

Every backend works on the hole's neighbourhood only, scaled down to `working_size` when larger, and its
result is pasted back inside the hole: pixels outside the hole stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from .factory import backend_factory
from .weights import checkpoint_path, verified


class Inpainter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """uint8 RGB of the same size; only pixels where hole is True may differ."""


def fill_inside_hole(
    image: np.ndarray,
    hole: np.ndarray,
    fill: Callable[[np.ndarray, np.ndarray], np.ndarray],
    working_size: int,
    context: float = 0.5,
) -> np.ndarray:
    """Run `fill` on the hole's box grown by `context` (a fraction of its size), at most `working_size` px
    on its long side, and paste the result back only inside the hole."""
    if not hole.any():
        return image.copy()
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    y0, y1 = max(0, ys.min() - int(bh * context) - 8), min(h, ys.max() + 1 + int(bh * context) + 8)
    x0, x1 = max(0, xs.min() - int(bw * context) - 8), min(w, xs.max() + 1 + int(bw * context) + 8)
    crop, crop_hole = image[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    scale = min(1.0, working_size / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(crop_hole.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        small_hole |= cv2.resize(crop_hole.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) > 0
        filled = cv2.resize(
            fill(small, small_hole), (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_CUBIC
        )
    else:
        filled = fill(crop, crop_hole)
    out = image.copy()
    region = out[y0:y1, x0:x1]
    region[crop_hole] = filled[crop_hole]
    return out


class OpenCVInpainter:
    name = "opencv"

    def __init__(self, method: str = "telea", radius: int = 5, working_size: int = 512):
        flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
        if method not in flags:
            raise ValueError(f"Unknown OpenCV inpainting method '{method}'; choose telea or ns")
        self.flag, self.radius, self.working_size = flags[method], radius, working_size
        self.name = f"opencv_{method}"

    def _fill(self, image, hole):
        return cv2.inpaint(image, hole.astype(np.uint8) * 255, self.radius, self.flag)

    def __call__(self, image, hole):
        return fill_inside_hole(image, hole, self._fill, self.working_size)


class PatchMatchInpainter:
    name = "patchmatch"

    def __init__(self, patch_size: int = 7, seed: int = 0, working_size: int = 384):
        self.patch_size, self.seed, self.working_size = patch_size, seed, working_size

    def _fill(self, image, hole):
        from patchmatch_cython import inpaint_pyramid

        bgr = np.ascontiguousarray(image[..., ::-1])
        out = inpaint_pyramid(bgr, hole.astype(np.uint8), patch_size=self.patch_size, seed=self.seed)
        return np.clip(out, 0, 255).astype(np.uint8)[..., ::-1]

    def __call__(self, image, hole):
        return fill_inside_hole(image, hole, self._fill, self.working_size)


class LamaInpainter:
    name = "lama"

    def __init__(self, model: Any, working_size: int = 512, device: str = "auto"):
        from ..runtime import device_name

        self.model, self.working_size, self.device = model, working_size, device_name(device)

    @classmethod
    def from_path(
        cls, model_path: str | None, working_size: int = 512, device: str = "auto", sha256: str | None = None
    ):
        """Trust boundary: LaMa ships only as TorchScript, and `torch.jit.load` runs the file's code (outside
        the safetensors / `weights_only` rule every other weight follows): it is loaded only with its sha256
        in `inpainting.lama.sha256` (conf/studio ships big-lama.pt's), or `sha256: unverified`."""
        import torch

        from ..runtime import device_name

        path = checkpoint_path(model_path, "inpainting.lama.model_path")
        verified(path, sha256, "inpainting.lama.sha256", "is TorchScript, which runs code when loaded")
        device = device_name(device)
        return cls(torch.jit.load(str(path), map_location=device).eval(), working_size, device)

    def _fill(self, image, hole):
        import torch

        h, w = hole.shape
        ph, pw = (-h) % 8, (-w) % 8  # LaMa wants multiples of 8; crop the padding back off
        img = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect").astype(np.float32) / 255
        msk = np.pad(hole, ((0, ph), (0, pw)), mode="constant").astype(np.float32)
        with torch.inference_mode():
            out = self.model(
                torch.from_numpy(img).permute(2, 0, 1)[None].to(self.device),
                torch.from_numpy(msk)[None, None].to(self.device),
            )
        res = out[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()[:h, :w]
        return (res * 255 + 0.5).astype(np.uint8)

    def __call__(self, image, hole):
        return fill_inside_hole(image, hole, self._fill, self.working_size)


make_inpainter = backend_factory(
    "inpainting",
    {"opencv": OpenCVInpainter, "patchmatch": PatchMatchInpainter, "lama": LamaInpainter.from_path},
)
