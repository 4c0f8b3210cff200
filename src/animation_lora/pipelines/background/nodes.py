"""Background pipeline: clean plates (temporal fill, then inpainting, then a residue check), scene clusters,
the background LoRA dataset, data purity, and scores against the demo's clean plates."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from tqdm.auto import tqdm

from ...backends.captioning import make_captioner
from ...backends.inpainting import make_inpainter
from ...backends.segmentation import make_segmenter
from ...clustering import NOISE, apply_names, cluster_embeddings, contact_sheets, embed_images, select_cluster
from ...training_set import TrainingSet, build_lora_dataset
from ...loop import map_images, materialise
from ...metrics import psnr_from_mse, ssim

log = logging.getLogger(__name__)


def check_layers(background_layers: dict[str, Any], hole_masks: dict[str, Any], layer_index: pd.DataFrame,
                 checks: dict[str, Any]) -> pd.DataFrame:
    """Every layer needs its hole mask, of the same size; a plate that is (almost) all hole is skipped with
    the reason. Output: `plates` (frame, shot, hole fraction, usable, reason)."""
    rows = []
    for frame_id in sorted(background_layers):
        if frame_id not in hole_masks:
            raise ValueError(f"Background layer '{frame_id}' has no hole mask: rerun `kedro run --pipeline=preprocessing`")
        layer, hole = materialise(background_layers[frame_id]), materialise(hole_masks[frame_id])
        if layer.shape[:2] != hole.shape[:2]:
            raise ValueError(f"Hole mask of frame '{frame_id}' is {hole.shape[1]}x{hole.shape[0]} but its background "
                             f"layer is {layer.shape[1]}x{layer.shape[0]}")
        fraction = float((hole > 0).mean())
        usable = fraction < checks["max_hole_fraction"]
        rows.append(dict(frame_id=frame_id, hole_fraction=fraction, usable=usable,
                         reason="" if usable else f"hole covers {fraction:.0%} of the plate"))
    plates = pd.DataFrame(rows, columns=["frame_id", "hole_fraction", "usable", "reason"])
    return plates.merge(layer_index[["frame_id", "shot"]], on="frame_id", how="left")


def camera_path(images: list[np.ndarray], holes: list[np.ndarray], max_step: float) -> np.ndarray:
    """Camera position (x, y) of each frame of a shot relative to the first: phase correlation between
    consecutive frames, summed. Holes are first filled smoothly (Telea) so the moving characters' outlines
    do not pull the correlation; consecutive frames keep shifts small, which avoids the ambiguity of periodic
    textures (wallpaper); a step longer than `max_step` x the width (a character's jump taken for a pan)
    is replaced by the median step."""
    def smooth_grey(image, hole):
        filled = cv2.inpaint(image, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA) if hole.any() else image
        return cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32)

    greys = [smooth_grey(i, h) for i, h in zip(images, holes)]
    window = cv2.createHanningWindow(greys[0].shape[::-1], cv2.CV_32F)
    steps = np.array([cv2.phaseCorrelate(a, b, window)[0] for a, b in zip(greys, greys[1:])]).reshape(-1, 2)
    wild = np.linalg.norm(steps, axis=1) > max_step * greys[0].shape[1]
    if wild.any():
        steps[wild] = np.median(steps[~wild], axis=0) if (~wild).any() else 0.0
    # phaseCorrelate gives how far the content moved: the camera moved the other way
    return -np.cumsum(np.vstack([np.zeros((1, 2)), steps]), axis=0)


def temporal_fill(background_layers: dict[str, Any], hole_masks: dict[str, Any], plates: pd.DataFrame,
                  fill: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], pd.DataFrame]:
    """Within a shot, a pixel hidden in one frame is often visible in another: align the shot's frames to
    each other (translation by phase correlation: camera pans) and fill each hole pixel with the median of
    the neighbours that see it. Outputs: filled layers, the holes left to inpaint, and a fill report."""
    usable = plates[plates.usable]
    filled, remaining, rows = {}, {}, []
    for _, group in tqdm(usable.groupby("shot"), desc="temporal fill", unit="shot"):
        ids = list(group.sort_values("frame_id").frame_id)
        images = [materialise(background_layers[i]) for i in ids]
        holes = [materialise(hole_masks[i]) > 0 for i in ids]
        h, w = holes[0].shape
        path = camera_path(images, holes, fill["max_step"])
        edge_kernel = np.ones((2 * fill["edge_margin"] + 1,) * 2, np.uint8)
        for i, fid in enumerate(ids):
            out, hole = images[i].copy(), holes[i].copy()
            if fill["enabled"] and hole.any() and len(ids) > 1:
                order = sorted((j for j in range(len(ids)) if j != i), key=lambda j: abs(j - i))[: fill["max_neighbours"]]
                stack, seen, inside = [], [], []
                for j in order:
                    dx, dy = path[j] - path[i]  # frame j looks (dx, dy) further right/down: move it back
                    m = np.float32([[1, 0, dx], [0, 1, dy]])
                    stack.append(cv2.warpAffine(images[j], m, (w, h), flags=cv2.INTER_NEAREST))
                    # a neighbour's pixels right next to its own hole may still carry character edges
                    trusted = cv2.erode((~holes[j]).astype(np.uint8), edge_kernel)
                    visible = cv2.warpAffine(trusted, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0
                    seen.append(visible)
                    inside.append(cv2.warpAffine(np.ones((h, w), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0)
                stack_a, seen_a = np.stack(stack).astype(np.float32), np.stack(seen)
                count = seen_a.sum(0)
                # seen by only a few of the frames that cover it: more likely those frames' segmentation
                # missed a character that stands there than a background the character walked past
                share = count / np.maximum(np.stack(inside).sum(0), 1)
                fillable = hole & (count >= fill["min_views"]) & (share >= fill["min_visible_share"])
                masked = np.where(seen_a[..., None], stack_a, np.nan)
                median = np.nanmedian(masked[:, fillable], axis=0) if fillable.any() else np.zeros((0, 3))
                out[fillable] = np.clip(median + 0.5, 0, 255).astype(np.uint8)
                hole = hole & ~fillable
            filled[fid], remaining[fid] = out, hole
            before = int((holes[i]).sum())
            rows.append(dict(frame_id=fid, hole_pixels=before, filled_temporally=before - int(hole.sum()),
                             left_to_inpaint=int(hole.sum())))
    return filled, remaining, pd.DataFrame(rows)


def inpaint_plates(filled: dict[str, np.ndarray], remaining: dict[str, np.ndarray], inpainting: dict[str, Any],
                   ) -> dict[str, np.ndarray]:
    """Inpaint what temporal fill left. Output: clean_backgrounds (before the residue check)."""
    inpainter = make_inpainter(inpainting)
    out, _ = map_images({k: (filled[k], remaining[k]) for k in filled}, lambda pair: inpainter(*pair),
                        f"inpaint ({inpainter.name})")
    return out


def residue_check(inpainted: dict[str, np.ndarray], segmentation: dict[str, Any], residue: dict[str, Any],
                  ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Run the character segmenter on every clean plate; a plate where it still finds a character is
    dropped with the reason. Outputs: clean_backgrounds, residue_report."""
    segmenter = make_segmenter(segmentation)
    kept, rows = {}, []
    for fid in tqdm(sorted(inpainted), desc="residue check", unit="plate"):
        found = [i for i in segmenter.segment_shot([inpainted[fid]])[0] if i.mask.sum() >= residue["min_instance_pixels"]]
        area = int(sum(i.mask.sum() for i in found))
        rows.append(dict(frame_id=fid, residue_instances=len(found), residue_pixels=area, kept=not found,
                         reason="kept" if not found else f"character residue: {len(found)} instance(s), {area} px"))
        if not found:
            kept[fid] = inpainted[fid]
    report = pd.DataFrame(rows)
    log.info("Residue check kept %d of %d plates", len(kept), len(inpainted))
    return kept, report


def embed_plates(clean_backgrounds: dict[str, Any], embedding: dict[str, Any]) -> pd.DataFrame:
    return embed_images(clean_backgrounds, embedding, "frame_id")


def cluster_scenes(plate_embeddings: pd.DataFrame, clustering: dict[str, Any]) -> pd.DataFrame:
    """Scene clusters `scene_0 …` (seed: min cluster size 15, min samples 3, similarity 0.75, no face
    detection), renamed by `names`. Output: scene_clusters."""
    vectors = np.stack(plate_embeddings.embedding.to_numpy()) if len(plate_embeddings) else np.zeros((0, 1))
    clusters = cluster_embeddings(list(plate_embeddings.frame_id), vectors, "scene", clustering["min_cluster_size"],
                                  clustering["min_samples"], clustering["similarity_threshold"])
    clusters = apply_names(clusters, clustering.get("names")).rename(columns={"id": "frame_id"})
    log.info("Scene clusters: %s", clusters.cluster.value_counts().to_dict())
    return clusters


def scene_contact_sheets(clean_backgrounds: dict[str, Any], scene_clusters: pd.DataFrame) -> dict[str, Image.Image]:
    return contact_sheets(clean_backgrounds, scene_clusters, "frame_id", "plates")


def build_background_dataset(clean_backgrounds: dict[str, Any], scene_clusters: pd.DataFrame,
                             plate_embeddings: pd.DataFrame, frame_index: pd.DataFrame, dataset: dict[str, Any],
                             captioning: dict[str, Any], character_names: dict[str, str]) -> TrainingSet:
    """The background LoRA dataset of the chosen scene (named, or the largest, logged). Captions start with
    the scene trigger and the prefix and never name a character. Output: background.lora_dataset."""
    name = select_cluster(scene_clusters, dataset.get("scene"), "scene")
    if dataset.get("scene") is None:
        log.info("No scene named in parameters: using the largest scene cluster, '%s'", name)
    members = list(scene_clusters[scene_clusters.cluster == name].frame_id)
    emb = plate_embeddings.set_index("frame_id").loc[members]
    images = {i: materialise(clean_backgrounds[i]) for i in members}
    trigger = dataset["trigger_template"].format(name=name)
    exclude = list(dataset.get("exclude_words", [])) + list((character_names or {}).values())
    labels = [list(zip(n, p)) for n, p in zip(emb["labels"], emb["label_probs"])]
    captions = make_captioner(captioning)(list(images.values()), [{"scene": name} for _ in images], trigger,
                                          dataset["caption_prefix"], exclude, labels=labels)
    quality = frame_index.set_index("frame_id").reindex(members).sharpness.fillna(0).to_dict()
    return build_lora_dataset(name, trigger, images, dict(zip(images, captions)), quality,
                              {i: v for i, v in zip(emb.index, emb.embedding)}, dataset)


def score_background(clean_backgrounds: dict[str, Any], hole_masks: dict[str, Any], holes_left: dict[str, Any],
                     scene_clusters: pd.DataFrame, inpainting: dict[str, Any], ground_truth) -> dict[str, Any]:
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
        truth, plate = ground_truth.plate(int(fid[1:])), materialise(clean_backgrounds[fid])
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
    locations = ground_truth.frames.loc[[int(f[1:]) for f in clustered.frame_id], "location"]
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
        "scene_noise_fraction": float((scene_clusters.cluster == NOISE).mean()) if len(scene_clusters) else 0.0,
    }


def score_purity(background_dataset: TrainingSet, character_dataset: TrainingSet, scene_clusters: pd.DataFrame,
                 segmentation: dict[str, Any], purity: dict[str, Any]) -> dict[str, Any]:
    """Data purity beyond the seed's "make sure each LoRA's data is clean": character leakage in the
    background set (share of images where the segmenter still finds a character, and the masked area) and
    background bias of the character set (how many scenes its crops come from). `max_leakage` makes too
    much leakage a hard failure."""
    segmenter = make_segmenter(segmentation)
    leaks, areas = [], []
    for key, image in background_dataset.images.items():
        found = [i for i in segmenter.segment_shot([materialise(image)])[0] if i.mask.sum() >= purity["min_instance_pixels"]]
        leaks.append(bool(found))
        areas.append(float(sum(i.mask.mean() for i in found)))
    scene_of = dict(zip(scene_clusters.frame_id, scene_clusters.cluster))
    scenes = pd.Series([scene_of.get(k.rsplit("_", 1)[0], NOISE) for k in character_dataset.images])
    counts = scenes[scenes != NOISE].value_counts(normalize=True)
    metrics = {
        "background_images": len(leaks),
        "background_leakage_rate": float(np.mean(leaks)) if leaks else 0.0,
        "background_leakage_mean_area": float(np.mean(areas)) if areas else 0.0,
        "character_images": int(len(scenes)),
        "character_scenes": int(len(counts)),
        "character_scene_shares": {k: round(float(v), 3) for k, v in counts.items()},
        "character_largest_scene_share": float(counts.iloc[0]) if len(counts) else None,
    }
    if purity.get("max_leakage") is not None and metrics["background_leakage_rate"] > purity["max_leakage"]:
        raise ValueError(f"Background dataset leaks characters into {metrics['background_leakage_rate']:.0%} of its "
                         f"images (max_leakage {purity['max_leakage']:.0%}): see the residue report")
    return metrics
