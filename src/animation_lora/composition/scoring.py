"""Per-concept scores of composed images: is each requested concept (the character, the background) in the
image? The composition score is the share of requested concepts present (not CLIPScore, which did not follow
people's judgement in the LoRA Switch/Composite paper); CLIP-T prompt adherence is added when a local CLIP
checkpoint is configured."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..image_loop import materialise
from .parameters import Scoring

NOT_SCORED = "pose and expression presence (no concept probe); clip_t without a CLIP checkpoint"
PROBES_NOT_SCORED = "clip_t without a CLIP checkpoint"


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(np.linalg.norm(vector), 1e-8)


def mean_embeddings(embedder: Callable[[list], np.ndarray], images: dict[str, list]) -> dict[str, np.ndarray]:
    """{concept: its dataset's images} -> {concept: the unit mean embedding}, what a composed image is
    compared with."""
    return {concept: unit(embedder([materialise(i) for i in ims]).mean(0)) for concept, ims in images.items()}


class ClipScore:
    """CLIP-T prompt adherence (CLIPScore: 100 x cosine of image and text embeddings, floored at 0) with a
    local open_clip checkpoint (`composition.scoring.clip_checkpoint`); the tokenizer is open_clip's bundled
    one."""

    def __init__(self, checkpoint: str, model_name: str):
        import open_clip

        from ..backends.embedding import ClipEmbedder
        from ..backends.weights import checkpoint_path

        path = checkpoint_path(checkpoint, "composition.scoring.clip_checkpoint")
        self.image = ClipEmbedder(str(path), model_name)
        self.tokenizer = open_clip.get_tokenizer(self.image.model_id)

    def __call__(self, image: np.ndarray, prompt: str) -> float:
        import torch

        with torch.inference_mode():
            text = self.image.model.encode_text(self.tokenizer([prompt])).float()[0].numpy()
        return float(max(100 * float(self.image([image])[0] @ unit(text)), 0.0))


class ConceptScorer:
    """Per-concept presence for one image: the character (segmented, embedded, cosine to the character
    dataset's centroid) and the background (characters masked out, cosine to the background dataset's
    centroid). Pose, expression and CLIP-T join when their backends are configured."""

    def __init__(self, centroids: dict[str, np.ndarray], segmenter, embedder, scoring: Scoring):
        self.segmenter, self.embedder, self.centroid = segmenter, embedder, centroids
        self.thresholds = dataclasses.asdict(scoring.thresholds)
        self.clip = (
            ClipScore(scoring.clip_checkpoint, scoring.clip_model) if scoring.clip_checkpoint else None
        )

    def __call__(self, image: np.ndarray, requested: dict[str, float], prompt: str = "") -> dict[str, Any]:
        instances = self.segmenter.segment_shot([image])[0]
        scores: dict[str, Any] = {}
        if instances:
            biggest = max(instances, key=lambda i: i.mask.sum())
            ys, xs = np.nonzero(biggest.mask)
            rgba = np.dstack([image, biggest.mask.astype(np.uint8) * 255])
            crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            scores["character_similarity"] = float(self.embedder([crop])[0] @ self.centroid["character"])
        else:
            scores["character_similarity"] = None
        plate = image.copy()
        for inst in instances:
            plate[inst.mask] = 128
        scores["background_similarity"] = float(self.embedder([plate])[0] @ self.centroid["background"])
        present = {
            "character": (scores["character_similarity"] or -1) >= self.thresholds["character"],
            "background": scores["background_similarity"] >= self.thresholds["background"],
        }
        wanted = [c for c in present if requested.get(c, 0) > 0]
        scores.update({f"{c}_present": present[c] for c in present})
        scores["composition_score"] = float(np.mean([present[c] for c in wanted])) if wanted else None
        scores["all_present"] = float(all(present[c] for c in wanted)) if wanted else None
        scores["clip_t"] = self.clip(image, prompt) if self.clip and prompt else None
        return scores


def score_table(
    scorer,
    images: dict[str, Any],
    table: pd.DataFrame,
    judge: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table with each image's scores, and per strategy label: the weights it ran with, per-slot recall
    (`<slot>_present`: the share of images asking for the slot that show it), the all-requested-present rate,
    the mean share and seconds per image. `judge` says who scored (the probes' metrics and chance reference,
    or why no probe was available)."""
    rows = []
    for r in table.itertuples():
        # scored against what the prompt asks for, whatever the strategy ran with (base: no LoRA at all)
        image = materialise(images[r.image_id])
        rows.append({"image_id": r.image_id, **scorer(image, json.loads(r.requested), r.prompt)})
    scores = table.merge(pd.DataFrame(rows), on="image_id")
    present = [c for c in scores.columns if c.endswith("_present") and c != "all_present"]
    columns = ["composition_score", "all_present", *present]
    numeric = scores[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    per_strategy = numeric.groupby(scores.strategy).mean()
    per_strategy["seconds_per_image"] = scores.groupby("strategy").seconds.mean()
    per_strategy["images"] = scores.groupby("strategy").size()
    if scores.clip_t.notna().any():
        per_strategy["clip_t"] = scores.groupby("strategy").clip_t.mean()
    per_strategy = json.loads(per_strategy.to_json(orient="index"))
    for strategy, weights in scores.groupby("strategy").weights.first().items():
        per_strategy[strategy]["weights"] = json.loads(weights)
    judge = judge or {"judge": "centroids"}
    metrics = {
        "per_strategy": per_strategy,
        "images": int(len(scores)),
        **judge,
        "not_scored": PROBES_NOT_SCORED if judge.get("judge") == "probes" else NOT_SCORED,
    }
    return scores, metrics
