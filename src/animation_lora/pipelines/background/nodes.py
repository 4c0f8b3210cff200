"""Background pipeline: clean plates (temporal fill, then inpainting, then a residue check), scene clusters,
the background LoRA dataset, data purity, and scores against the demo's clean plates."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from ...backends.inpainting import make_inpainter
from ...backends.segmentation import characters_in, make_segmenter
from ...clustering import NOISE, ClusteringParams, cluster_embeddings, contact_sheets, embed_images
from ...ids import frame_number, instance_frame
from ...image_loop import map_images, materialise, progress, skip_table
from ...metrics import psnr_from_mse, ssim
from ...params import block, parse
from ...temporal_fill import TemporalFillParams, fill_shot
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each
from .plates import PlateCrop, drop_leaking, masked_plate

log = logging.getLogger(__name__)


@block
class LayerChecks:
    max_hole_fraction: float = 0.98  # plates (almost) all hole are skipped


@block
class SceneDatasetParams(DatasetParams):
    scene: str | None = None  # a scene cluster id or name; None takes the largest (logged)
    scenes: list[str] | None = None  # each its own LoRA; None: every scene cluster with min_images or more
    min_images: int = 5


@block
class InstanceFilter:
    min_instance_pixels: int = 400  # smaller segments are not counted as a character


@block
class PurityParams(InstanceFilter):
    max_leakage: float | None = None  # e.g. 0.0 fails the run when any plate was dropped for leaking


def check_layers(
    background_layers: dict[str, Any],
    hole_masks: dict[str, Any],
    layer_index: pd.DataFrame,
    checks: dict[str, Any],
) -> pd.DataFrame:
    """Every layer needs its hole mask, of the same size; a plate that is (almost) all hole, or cannot be
    read, is skipped with the reason. Output: `plates` (frame, shot, hole fraction, usable, reason)."""
    limit = parse(LayerChecks, checks, "background.checks").max_hole_fraction
    missing = sorted(set(background_layers) - set(hole_masks))
    if missing:
        raise ValueError(
            f"Background layer '{missing[0]}' has no hole mask: rerun `kedro run --pipelines=preprocessing`"
        )

    def hole_fraction(frame, pair):
        layer, hole = pair
        if layer.shape[:2] != hole.shape[:2]:
            raise ValueError(
                f"Hole mask of frame '{frame}' is {hole.shape[1]}x{hole.shape[0]} but its background "
                f"layer is {layer.shape[1]}x{layer.shape[0]}"
            )
        return float((hole > 0).mean())

    pairs = {f: (background_layers[f], hole_masks[f]) for f in sorted(background_layers)}
    fractions, skipped = map_images(pairs, hole_fraction, "check layers", keyed=True)
    plates = pd.DataFrame({"frame_id": list(fractions), "hole_fraction": list(fractions.values())})
    plates["usable"] = plates.hole_fraction < limit
    plates["reason"] = np.where(
        plates.usable, "", [f"hole covers {f:.0%} of the plate" for f in plates.hole_fraction]
    )
    plates = pd.concat([plates, skip_table(skipped, "frame_id").assign(usable=False)], ignore_index=True)
    return plates.merge(layer_index[["frame_id", "shot"]], on="frame_id", how="left")


def temporal_fill(
    background_layers: dict[str, Any], hole_masks: dict[str, Any], plates: pd.DataFrame, fill: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], pd.DataFrame]:
    """Fill each usable plate's hole from the other frames of its shot (`animation_lora.temporal_fill`).
    Outputs: filled layers, the holes left to inpaint, and a fill report."""
    params = parse(TemporalFillParams, fill, "background.temporal_fill")
    filled, remaining, rows = {}, {}, []
    for _, group in progress(plates[plates.usable].groupby("shot"), "temporal fill", "shot"):
        ids = list(group.sort_values("frame_id").frame_id)
        images = [materialise(background_layers[i]) for i in ids]
        holes = [materialise(hole_masks[i]) > 0 for i in ids]
        for fid, before, (out, left) in zip(ids, holes, fill_shot(images, holes, params)):
            filled[fid], remaining[fid] = out, left
            rows.append(
                dict(
                    frame_id=fid,
                    hole_pixels=int(before.sum()),
                    filled_temporally=int(before.sum() - left.sum()),
                    left_to_inpaint=int(left.sum()),
                )
            )
    return filled, remaining, pd.DataFrame(rows)


def inpaint_plates(
    filled: dict[str, np.ndarray],
    remaining: dict[str, np.ndarray],
    inpainting: dict[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Inpaint what temporal fill left. Outputs: inpainted plates (before the residue check) and the
    inpaint report (one row per plate: inpainted, or skipped with the reason)."""
    inpainter = make_inpainter(inpainting)
    out, skipped = map_images(
        {k: (filled[k], remaining[k]) for k in filled},
        lambda pair: inpainter(*pair),
        f"inpaint ({inpainter.name})",
    )
    done = pd.DataFrame({"frame_id": list(out), "reason": f"inpainted ({inpainter.name})"})
    return out, pd.concat([done, skip_table(skipped, "frame_id")], ignore_index=True)


def residue_check(
    inpainted: dict[str, np.ndarray],
    holes_left: dict[str, Any],
    segmentation: dict[str, Any],
    residue: dict[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], pd.DataFrame]:
    """Run the character segmenter on every clean plate; a plate where it still finds a character on the
    pixels the LoRA learns (not the inpainted ones, `holes_left`: the masked loss skips them) is dropped with
    the reason. Outputs: clean_backgrounds, rejected_plates (to look at; the reason of each is
    in residue_report), residue_report."""
    segmenter = make_segmenter(segmentation)
    min_pixels = parse(InstanceFilter, residue, "background.residue").min_instance_pixels
    found, skipped = map_images(
        {fid: (inpainted[fid], holes_left[fid]) for fid in sorted(inpainted)},
        lambda pair: characters_in(segmenter, pair[0], min_pixels, pair[1] > 0),
        "residue check",
        "plate",
    )
    rows = []
    for fid, instances in found.items():
        area = int(sum(i.mask.sum() for i in instances))
        rows.append(
            dict(
                frame_id=fid,
                residue_instances=len(instances),
                residue_pixels=area,
                kept=not instances,
                reason="kept"
                if not instances
                else f"character residue: {len(instances)} instance(s), {area} px",
            )
        )
    kept = {fid: inpainted[fid] for fid, instances in found.items() if not instances}
    rejected = {fid: inpainted[fid] for fid, instances in found.items() if instances}
    log.info("Residue check kept %d of %d plates (rejected ones: rejected_plates, reasons: residue_report)",
             len(kept), len(inpainted))
    return kept, rejected, pd.concat(
        [pd.DataFrame(rows), skip_table(skipped, "frame_id").assign(kept=False)], ignore_index=True
    )


def embed_plates(
    clean_backgrounds: dict[str, Any], embedding: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outputs: plate_embeddings and plate_embedding_report (unreadable plates with the reason)."""
    return embed_images(clean_backgrounds, embedding, "frame_id")


def cluster_scenes(plate_embeddings: pd.DataFrame, frame_index: pd.DataFrame, clustering: dict[str, Any]
                   ) -> pd.DataFrame:
    """Scene clusters `scene_0 …` (the brief: min cluster size 15, min samples 3, similarity 0.75, no face
    detection), each shot one location (a shot never splits by time), renamed by `names`.
    Output: scene_clusters."""
    params = parse(ClusteringParams, clustering, "background.scene_clustering")
    vectors = np.stack(plate_embeddings.embedding.to_numpy()) if len(plate_embeddings) else np.zeros((0, 1))
    shot_of = frame_index.set_index("frame_id").shot.astype(str)
    shots = [f"shot_{shot_of.get(f, f)}" for f in plate_embeddings.frame_id]
    ids = list(plate_embeddings.frame_id)
    clusters = cluster_embeddings(ids, vectors, "scene", params, shots, smooth=False)  # a shot: one place
    clusters = clusters.rename(columns={"id": "frame_id"})
    log.info("Scene clusters: %s", clusters.cluster.value_counts().to_dict())
    return clusters


def scene_contact_sheets(
    clean_backgrounds: dict[str, Any], scene_clusters: pd.DataFrame
) -> dict[str, Image.Image]:
    return contact_sheets(clean_backgrounds, scene_clusters, "frame_id", "plates")


def build_background_dataset(
    clean_backgrounds: dict[str, Any],
    holes_left: dict[str, Any],
    scene_clusters: pd.DataFrame,
    plate_embeddings: pd.DataFrame,
    frame_index: pd.DataFrame,
    dataset: dict[str, Any],
    crop: dict[str, Any],
    captioning: dict[str, Any],
    character_names: dict[str, str],
    segmentation: dict[str, Any],
    purity: dict[str, Any],
) -> tuple[TrainingSet, dict[str, TrainingSet], pd.DataFrame]:
    """The background LoRA datasets of the selected scenes. Each plate is RGBA: alpha 0 on the inpainted
    pixels (`holes_left`), cropped away from a large hole (`background.crop`); captions start with the scene
    trigger and the prefix and never name a character; plates where the segmenter still finds a character
    are dropped (`background.purity`). Outputs: background.lora_dataset (the chosen scene: named, or the
    largest, logged), background.lora_datasets (`{name: dataset}`, one LoRA per selected scene) and
    background_purity_report (every plate checked, dropped or kept, and why)."""
    params = parse(SceneDatasetParams, dataset, "background.scene_dataset")
    crop_params = parse(PlateCrop, crop, "background.crop")
    min_pixels = parse(PurityParams, purity, "background.purity").min_instance_pixels
    missing = sorted(set(clean_backgrounds) - set(holes_left))
    if missing:
        raise ValueError(f"Plate '{missing[0]}' has no holes_left mask (what was inpainted): rerun the "
                         f"background pipeline from temporal_fill_node")
    quality = frame_index.set_index("frame_id").sharpness.fillna(0).to_dict()
    plates = {f: (clean_backgrounds[f], holes_left[f]) for f in clean_backgrounds}
    common = dict(clusters=scene_clusters, embeddings=plate_embeddings, id_column="frame_id",
                  images=plates, quality=quality, what="scene", params=params,
                  captioning=captioning, exclude=list((character_names or {}).values()),
                  prepare=lambda p: masked_plate(materialise(p[0]), materialise(p[1]) > 0, crop_params))
    first, each = main_and_each(params.scene, params.scenes, params.min_images, **common)
    segmenter = make_segmenter(segmentation)
    each, report = drop_leaking(first.name, each, lambda im: characters_in(segmenter, im, min_pixels))
    return each[first.name], each, report


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
        left = holes_left[fid] if fid in holes_left else np.zeros_like(hole)
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


def score_purity(
    background_purity_report: pd.DataFrame,
    character_dataset: TrainingSet,
    scene_clusters: pd.DataFrame,
    purity: dict[str, Any],
) -> dict[str, Any]:
    """Data purity beyond the brief's "make sure each LoRA's data is clean": character leakage in the
    background sets (from `background_purity_report`: the plates where the segmenter still found a character
    were dropped before the datasets were saved; the rate before the drop and the count dropped) and
    background bias of the character set (how many scenes its crops come from). `max_leakage` makes too
    much leakage (before the drop) a hard failure."""
    params = parse(PurityParams, purity, "background.purity")
    report = background_purity_report
    leaks = report.residue_instances.to_numpy() > 0
    scene_of = dict(zip(scene_clusters.frame_id, scene_clusters.cluster))
    scenes = pd.Series([scene_of.get(instance_frame(k), NOISE) for k in character_dataset.images])
    counts = scenes[scenes != NOISE].value_counts(normalize=True)
    saved = leaks[~report.dropped.to_numpy(bool)]
    metrics = {
        "background_images": int(len(saved)),
        "background_dropped_for_leakage": int(report.dropped.sum()),
        "background_leakage_rate": float(saved.mean()) if len(saved) else 0.0,
        "background_leakage_rate_before_drop": float(leaks.mean()) if len(leaks) else 0.0,
        "background_leakage_mean_area": float(report.area.mean()) if len(report) else 0.0,
        "character_images": int(len(scenes)),
        "character_scenes": int(len(counts)),
        "character_scene_shares": {k: round(float(v), 3) for k, v in counts.items()},
        "character_largest_scene_share": float(counts.iloc[0]) if len(counts) else None,
    }
    rate = metrics["background_leakage_rate_before_drop"]
    if params.max_leakage is not None and rate > params.max_leakage:
        raise ValueError(
            f"Background plates leak characters into {rate:.0%} of the images checked (max_leakage "
            f"{params.max_leakage:.0%}): see background_purity_report"
        )
    return metrics
