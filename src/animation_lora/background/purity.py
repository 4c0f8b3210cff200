"""No character in a background plate: the residue check's report rows (a plate where the segmenter still
finds a character is rejected), and the purity metrics of the datasets (character leakage in the background
sets, background bias of the character set)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from ..clustering import NOISE
from ..ids import instance_frame
from ..lora_dataset import TrainingSet
from ..params import block


@block
class InstanceFilter:
    min_instance_pixels: int = 400  # smaller segments are not counted as a character


@block
class PurityParams(InstanceFilter):
    max_leakage: float | None = None  # e.g. 0.0 fails the run when any plate was dropped for leaking


RESIDUE_COLUMNS = ["frame_id", "residue_instances", "residue_pixels", "kept", "reason"]


def residue_counts(report: pd.DataFrame) -> dict[str, int]:
    """The residue report's plates by outcome: kept, a character still found, unreadable (skipped)."""
    found = report.residue_instances.fillna(0).to_numpy() > 0
    kept = report.kept.fillna(False).to_numpy(bool)
    return {"kept": int(kept.sum()), "character still found": int(found.sum()),
            "unreadable": int((~kept & ~found).sum())}


def plates_lost(plates: pd.DataFrame, residue_report: pd.DataFrame) -> str:
    """Why a film left no clean plate, from the layer check (`plates`) and the residue check's report."""
    if plates.empty:
        return "the film gave no background layer (preprocessing kept no frame)"
    usable = int(plates.usable.sum())
    if usable == 0:
        reasons = plates.reason.value_counts().to_dict()
        return f"0 of {len(plates)} plates are usable ({reasons}) — see `plates` and background.checks"
    counts = residue_counts(residue_report)
    if counts["kept"] == 0:
        found, unreadable = counts["character still found"], counts["unreadable"]
        return (f"0 of {len(residue_report)} plates passed the residue check: {found} still show a "
                f"character, {unreadable} unreadable — see rejected_plates and residue_report")
    return (f"{counts['kept']} clean plates gave no scene cluster — see plate_embedding_report and "
            f"background.scene_clustering")


class Residue(NamedTuple):
    """What a segmenter still finds on a plate, without its masks (a film's plates would hold them all)."""

    instances: int
    pixels: int
    size: int  # the plate's pixels


def residue_of(instances: list) -> Residue:
    return Residue(len(instances), int(sum(i.mask.sum() for i in instances)),
                   int(instances[0].mask.size) if instances else 1)


def residue_rows(found: dict[str, Residue]) -> list[dict[str, Any]]:
    """A report row per plate: the character instances found on it, kept when there is none."""
    return [dict(frame_id=fid, residue_instances=r.instances, residue_pixels=r.pixels, kept=not r.instances,
                 reason=f"character residue: {r.instances} instance(s), {r.pixels} px" if r.instances
                 else "kept") for fid, r in found.items()]


def purity_metrics(report: pd.DataFrame, character_dataset: TrainingSet, scene_clusters: pd.DataFrame,
                   params: PurityParams) -> dict[str, Any]:
    """Character leakage in the background sets (from the purity report: the plates where the segmenter
    still found a character were dropped before the datasets were saved; the rate before the drop and the
    count dropped) and the background bias of the character set (how many scenes its crops come from).
    `max_leakage` makes too much leakage (before the drop) a hard failure."""
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
