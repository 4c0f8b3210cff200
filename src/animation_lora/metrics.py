"""Scores against the demo's ground truth, shared by the pipelines' scoring nodes."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of 8-bit images from their mean squared error; inf when equal."""
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM (7x7 windows, per channel) over the pixels of `mask`."""
    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    values = full.mean(axis=2)
    return float(values[mask].mean() if mask is not None and mask.any() else values.mean())
