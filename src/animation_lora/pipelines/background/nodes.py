"""Background pipeline: clean plates (temporal fill, then inpainting, then a residue check), scene clusters
and the background LoRA datasets, with their purity (`animation_lora.background`)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...backends.inpainting import make_inpainter
from ...backends.segmentation import characters_in, make_segmenter
from ...background.plates import (
    PURITY_COLUMNS,
    LayerChecks,
    PlateCrop,
    drop_leaking,
    hole_fraction,
    masked_plate,
)
from ...background.purity import (
    RESIDUE_COLUMNS,
    InstanceFilter,
    PurityParams,
    plates_lost,
    purity_metrics,
    residue_counts,
    residue_of,
    residue_rows,
)
from ...background.temporal_fill import TemporalFillParams, fill_shot
from ...clustering import (
    NOISE,
    ClusteringParams,
    apply_names,
    cluster_embeddings,
    contact_sheets,
    embed_images,
)
from ...curation import apply_to_clusters, load_curation
from ...image_loop import map_images, materialise, skip_table
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each, nothing_to_teach
from ...params import Count, block
from ...shot_cache import ShotCacheParams, ShotResult, per_shot

log = logging.getLogger(__name__)


@block
class SceneDatasetParams(DatasetParams):
    scene: str | None = None  # a scene cluster id or name; None takes the largest (logged)
    scenes: list[str] | None = None  # each its own LoRA; None: every scene cluster with min_images or more
    min_images: Count = 5


def check_layers(background_layers: dict[str, Any], hole_masks: dict[str, Any], layer_index: pd.DataFrame,
                 checks: LayerChecks) -> pd.DataFrame:
    """Every layer needs its hole mask, of the same size; a plate that is (almost) all hole, or cannot be
    read, is skipped with the reason. Output: `plates` (frame, shot, hole fraction, usable, reason)."""
    missing = sorted(set(background_layers) - set(hole_masks))
    if missing:
        raise ValueError(
            f"Background layer '{missing[0]}' has no hole mask: rerun `kedro run --pipelines=preprocessing`"
        )
    pairs = {f: (background_layers[f], hole_masks[f]) for f in sorted(background_layers)}
    fractions, skipped = map_images(pairs, hole_fraction, "check layers", keyed=True)
    plates = pd.DataFrame({"frame_id": list(fractions), "hole_fraction": list(fractions.values())})
    plates["usable"] = plates.hole_fraction < checks.max_hole_fraction
    plates["reason"] = np.where(
        plates.usable, "", [f"hole covers {f:.0%} of the plate" for f in plates.hole_fraction]
    )
    plates = pd.concat([plates, skip_table(skipped, "frame_id").assign(usable=False)], ignore_index=True)
    return plates.merge(layer_index[["frame_id", "shot"]], on="frame_id", how="left")


def temporal_fill(background_layers: dict[str, Any], hole_masks: dict[str, Any], plates: pd.DataFrame,
                  temporal_fill: TemporalFillParams, cache: ShotCacheParams | None = None,
                  ) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Fill each usable plate's hole from the other frames of its shot (`background.temporal_fill`), a shot
    at a time through the shot cache. Outputs: filled layers, the holes left to inpaint, and a fill report."""
    shots = {int(s): sorted(g.frame_id) for s, g in plates[plates.usable.astype(bool)].groupby("shot")}

    def fill(shot: int, inputs: tuple) -> ShotResult:
        ids = shots[shot]
        images, holes = list(inputs[:len(ids)]), [h > 0 for h in inputs[len(ids):]]
        out = ShotResult({"filled": {}, "left": {}}, {"fill": []})
        for fid, before, (filled, left) in zip(ids, holes, fill_shot(images, holes, temporal_fill)):
            out.images["filled"][fid], out.images["left"][fid] = filled, left
            out.rows["fill"].append(dict(frame_id=fid, hole_pixels=int(before.sum()),
                                         filled_temporally=int(before.sum() - left.sum()),
                                         left_to_inpaint=int(left.sum())))
        return out

    inputs = ((s, tuple(background_layers[i] for i in ids) + tuple(hole_masks[i] for i in ids))
              for s, ids in shots.items())
    result, _ = per_shot("temporal_fill", inputs, fill, temporal_fill, cache, "temporal fill", len(shots),
                         ids=shots.get)
    report = pd.DataFrame(result.rows.get("fill", []),
                          columns=["frame_id", "hole_pixels", "filled_temporally", "left_to_inpaint"])
    return result.images.get("filled", {}), result.images.get("left", {}), report


def inpaint_plates(filled: dict[str, Any], remaining: dict[str, Any], inpainting: dict[str, Any],
                   cache: ShotCacheParams | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Inpaint what temporal fill left, a plate at a time through the shot cache. Outputs: inpainted plates
    (before the residue check) and the inpaint report (one row per plate: inpainted, or skipped with the
    reason)."""
    inpainter = functools.cache(lambda: make_inpainter(inpainting))  # loaded once a plate needs it
    result, skipped = per_shot(
        "inpaint", ((k, (filled[k], remaining[k])) for k in filled),
        lambda k, pair: ShotResult({"plates": {k: inpainter()(pair[0], pair[1] > 0)}}),
        inpainting, cache, f"inpaint ({inpainting.get('backend')})", len(filled), unit="plate")
    out = result.images.get("plates", {})
    done = pd.DataFrame({"frame_id": list(out), "reason": f"inpainted ({inpainting.get('backend')})"})
    return out, pd.concat([done, skip_table(skipped, "frame_id")], ignore_index=True)


def residue_check(inpainted: dict[str, np.ndarray], holes_left: dict[str, Any], segmentation: dict[str, Any],
                  residue: InstanceFilter) -> dict[str, Any]:
    """Run the character segmenter on every clean plate; a plate where it still finds a character on the
    pixels the LoRA learns (not the inpainted ones, `holes_left`: the masked loss skips them) is dropped with
    the reason. Outputs: `kept` (clean_backgrounds), `rejected` (rejected_plates, to look at; the reason of
    each is in the report) and `report` (residue_report)."""
    segmenter = make_segmenter(segmentation)
    found, skipped = map_images(
        {fid: (inpainted[fid], holes_left[fid]) for fid in sorted(inpainted)},
        lambda pair: residue_of(characters_in(segmenter, pair[0], residue.min_instance_pixels, pair[1] > 0)),
        "residue check", "plate",
    )
    kept = {fid: inpainted[fid] for fid, r in found.items() if not r.instances}
    report = pd.concat([pd.DataFrame(residue_rows(found), columns=RESIDUE_COLUMNS),
                        skip_table(skipped, "frame_id").assign(kept=False)], ignore_index=True)
    log.info("Residue check kept %d of %d plates; %s (rejected ones: rejected_plates, each reason: "
             "residue_report)", len(kept), len(inpainted), residue_counts(report))
    return {
        "kept": kept,
        "rejected": {fid: inpainted[fid] for fid, r in found.items() if r.instances},
        "report": report,
    }


def embed_plates(clean_backgrounds: dict[str, Any], embedding: dict[str, Any]) -> tuple[pd.DataFrame,
                                                                                        pd.DataFrame]:
    """Outputs: plate_embeddings and plate_embedding_report (unreadable plates with the reason)."""
    return embed_images(clean_backgrounds, embedding, "frame_id")


def cluster_scenes(plate_embeddings: pd.DataFrame, frame_index: pd.DataFrame,
                   scene_clustering: ClusteringParams, curation: dict | None,
                   ) -> pd.DataFrame:
    """Scene clusters `scene_0 …` (the brief: min cluster size 15, min samples 3, similarity 0.75, no face
    detection), each shot one location (a shot never splits by time), renamed by `names`; then the curation
    file's decisions about the scenes. Output: scene_clusters."""
    vectors = np.stack(plate_embeddings.embedding.to_numpy()) if len(plate_embeddings) else np.zeros((0, 1))
    shot_of = frame_index.set_index("frame_id").shot.astype(str)
    shots = [f"shot_{shot_of.get(f, f)}" for f in plate_embeddings.frame_id]
    ids = list(plate_embeddings.frame_id)
    clusters = cluster_embeddings(ids, vectors, "scene", scene_clustering, shots,
                                  smooth=False)  # a shot: one place
    clusters = clusters.rename(columns={"id": "frame_id"})
    if len(clusters) and (clusters.cluster == NOISE).all():  # too few plates to cluster: one scene of all
        log.warning("Only %d clean plates, too few for scene clusters (min_cluster_size %d): they are one "
                    "scene, 'scene_0'", len(clusters), scene_clustering.min_cluster_size)
        clusters = apply_names(clusters.assign(cluster="scene_0", assigned_by="few plates"),
                               scene_clustering.names)
    clusters = apply_to_clusters(clusters, "frame_id", load_curation(curation).scenes, "scene")
    log.info("Scene clusters: %s", clusters.cluster.value_counts().to_dict())
    return clusters


def scene_contact_sheets(clean_backgrounds: dict[str, Any], scene_clusters: pd.DataFrame) -> dict[str,
                                                                                                  Image.Image]:
    return contact_sheets(clean_backgrounds, scene_clusters, "frame_id", "plates")


def build_background_datasets(clean_backgrounds: dict[str, Any], holes_left: dict[str, Any],
                              scene_clusters: pd.DataFrame, plate_embeddings: pd.DataFrame,
                              frame_index: pd.DataFrame, plates: pd.DataFrame, residue_report: pd.DataFrame,
                              scene_dataset: SceneDatasetParams, crop: PlateCrop,
                              captioning: dict[str, Any], names: dict[str, str], curation: dict | None,
                              ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """The background LoRA datasets of the selected scenes, before the purity check. Each plate is RGBA:
    alpha 0 on the inpainted pixels (`holes_left`), cropped away from a large hole (`background.crop`);
    captions start with the scene trigger and the prefix and never name a character (`names`: the character
    clusters' names, and the curation's). Outputs: the chosen scene's dataset (named, or the largest,
    logged) and
    `{name: dataset}`, one per selected scene. A film that leaves no clean plate gives no background LoRA
    (`nothing_to_teach`, with where the plates went: `plates`, `residue_report`); a scene under `min_images`
    plates is trained with a warning when it is the only one."""
    missing = sorted(set(clean_backgrounds) - set(holes_left))
    if missing:
        raise ValueError(f"Plate '{missing[0]}' has no holes_left mask (what was inpainted): rerun the "
                         f"background pipeline from temporal_fill_node")
    counts = scene_clusters[scene_clusters.cluster != NOISE].cluster.value_counts()
    if counts.empty:
        return nothing_to_teach("background", plates_lost(plates, residue_report)), {}
    each = scene_dataset.scenes
    if each is None and counts.iloc[0] < scene_dataset.min_images:
        log.warning("The largest scene, '%s', has %d plates (`min_images` %d): its LoRA is trained on them",
                    counts.index[0], counts.iloc[0], scene_dataset.min_images)
        each = [str(counts.index[0])]
    quality = frame_index.set_index("frame_id").sharpness.fillna(0).to_dict()
    decided = load_curation(curation)
    plates = {f: (clean_backgrounds[f], holes_left[f]) for f in clean_backgrounds}
    return main_and_each(
        scene_dataset.scene, each, scene_dataset.min_images, clusters=scene_clusters,
        embeddings=plate_embeddings, id_column="frame_id", images=plates, quality=quality, what="scene",
        params=scene_dataset, captioning=captioning, decisions=decided.scenes,
        exclude=[*(names or {}).values(), *decided.characters.names.values()],
        prepare=lambda p: masked_plate(materialise(p[0]), materialise(p[1]) > 0, crop))


def drop_leaking_plates(candidate: TrainingSet, candidates: dict[str, TrainingSet],
                        segmentation: dict[str, Any],
                        purity: PurityParams) -> tuple[TrainingSet, dict[str, TrainingSet], pd.DataFrame]:
    """Plates where the segmenter still finds a character (`background.purity`) are dropped before the
    datasets are saved. Outputs: background.lora_dataset, background.lora_datasets and
    background_purity_report (every plate checked, dropped or kept, and why)."""
    if candidate.skipped:
        return candidate, {}, pd.DataFrame(columns=PURITY_COLUMNS)
    segmenter = make_segmenter(segmentation)
    each, report = drop_leaking(candidate.name, candidates,
                                lambda im: characters_in(segmenter, im, purity.min_instance_pixels))
    return each[candidate.name], each, report


def score_purity(background_purity_report: pd.DataFrame, character_dataset: TrainingSet,
                 scene_clusters: pd.DataFrame, purity: PurityParams) -> dict[str, Any]:
    """Data purity beyond the brief's "make sure each LoRA's data is clean" (`background.purity`).
    Output: purity_metrics; `max_leakage` makes too much leakage a hard failure."""
    return purity_metrics(background_purity_report, character_dataset, scene_clusters, purity)
