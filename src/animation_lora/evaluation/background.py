"""Clean plates against the demo's true plates: PSNR and SSIM in the holes, apart for the pixels filled from
other frames and those inpainted; scene clusters against the true locations (ARI)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ..clustering import NOISE
from ..ids import frame_number
from ..image_loop import materialise
from ..metrics import psnr_from_mse, ssim


def score_background(
    clean_backgrounds: dict[str, Any],
    hole_masks: dict[str, Any],
    holes_left: dict[str, Any],
    scene_clusters: pd.DataFrame,
    inpainting: dict[str, Any],
    ground_truth,
) -> dict[str, Any]:
    """Against the demo's clean plates: PSNR (pooled over pixels) and mean SSIM inside the holes, and PSNR
    apart for the pixels filled from other frames and for those inpainted; the ARI of the scene clusters
    against the true locations."""
    if ground_truth is None:
        return {"ground_truth": False}
    errors = {"hole": [], "temporal": [], "inpainted": []}
    ssims = []
    for fid in sorted(clean_backgrounds):
        hole = materialise(hole_masks[fid]) > 0
        if not hole.any():
            continue
        truth, plate = ground_truth.plate(frame_number(fid)), materialise(clean_backgrounds[fid])
        sq = ((plate.astype(np.float64) - truth) ** 2).mean(axis=2)
        left = materialise(holes_left[fid]) > 0 if fid in holes_left else np.zeros_like(hole)
        errors["hole"].append(sq[hole])
        errors["temporal"].append(sq[hole & ~left])
        errors["inpainted"].append(sq[hole & left])
        ssims.append(ssim(plate, truth, hole))

    def pooled_psnr(parts):  # over all pixels of all plates, not a mean of per-plate PSNRs
        values = np.concatenate(parts) if parts else np.zeros(0)
        return psnr_from_mse(float(values.mean())) if values.size else None

    clustered = scene_clusters[scene_clusters.cluster != NOISE]
    locations = ground_truth.frames.loc[[frame_number(f) for f in clustered.frame_id], "location"]
    n_hole = sum(len(e) for e in errors["hole"])
    return {
        "ground_truth": True,
        "inpainting_backend": inpainting["backend"],
        "plates": len(clean_backgrounds),
        "psnr_in_hole_db": pooled_psnr(errors["hole"]),
        "psnr_filled_from_other_frames_db": pooled_psnr(errors["temporal"]),
        "psnr_inpainted_db": pooled_psnr(errors["inpainted"]),
        "hole_share_filled_from_other_frames": sum(len(e) for e in errors["temporal"]) / max(n_hole, 1),
        "ssim_in_hole": float(np.mean(ssims)) if ssims else None,
        "scene_clusters": sorted(set(clustered.cluster)),
        "scene_ari": float(adjusted_rand_score(locations, clustered.cluster)) if len(clustered) else 0.0,
        "scene_noise_fraction": float((scene_clusters.cluster == NOISE).mean())
        if len(scene_clusters)
        else 0.0,
    }


