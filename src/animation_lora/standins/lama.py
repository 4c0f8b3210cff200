"""A stand-in for big-lama.pt (simple-lama-inpainting's TorchScript of LaMa): the same call, (image
(1,3,H,W) in [0,1], mask (1,1,H,W)) -> image (1,3,H,W) in [0,1] for H and W multiples of 8, and the same
family, a tiny generator that downsamples 8x, mixes with a fast-Fourier-convolution block (LaMa's global
receptive field) and upsamples back. Seeded random weights; saved with `torch.jit.script`, so it is
TorchScript as the real file is, and its sha256 goes in `inpainting.lama.sha256`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn


class SpectralBlock(nn.Module):
    """LaMa's Fourier unit: a 1x1 convolution on the real FFT of the features (every pixel sees all)."""

    def __init__(self, width: int):
        super().__init__()
        self.spectral = nn.Conv2d(2 * width, 2 * width, 1)
        self.local = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        f = torch.fft.rfft2(x, norm="ortho")
        f = self.spectral(torch.cat([f.real, f.imag], dim=1)).relu()
        real, imag = f.chunk(2, dim=1)
        return x + self.local(x).relu() + torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho")


class TinyLama(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        down = [nn.Conv2d(4, width, 3, stride=2, padding=1), nn.ReLU()]
        for _ in range(2):
            down += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU()]
        self.down = nn.Sequential(*down)
        self.middle = SpectralBlock(width)
        up: list[nn.Module] = []
        for _ in range(3):
            up += [nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.ReLU()]
        self.up = nn.Sequential(*up, nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image * (1 - mask), mask], dim=1)  # LaMa's input: the masked picture and the mask
        return self.up(self.middle(self.down(x)))


def write(folder: Path, seed: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.jit.script(TinyLama().eval())
    path = folder / "big-lama.pt"
    model.save(str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"inpainting": {"lama": {"model_path": str(path), "sha256": digest}}}
