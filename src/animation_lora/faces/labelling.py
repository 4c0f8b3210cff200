"""An expression per face: a classifier backend's probabilities (each face cropped with the margin the
classifier wants), smoothed along tracks, kept when requested, confident, ahead of the runner-up and, where
asked, confirmed by a second backend; otherwise left out with the reason."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd

from ..backends.faces import make_expression_classifier
from ..clustering import NOISE
from ..image_loop import map_images
from ..lora_dataset import DatasetParams
from ..params import Count, block
from .crops import face_crop
from .expressions import canonical, label_face


@block
class CropParams:
    margin: float = 0.25  # around the detected face, as a share of its longer side
    size: int = 256  # the square crop's side in pixels (small faces are upscaled)


@block
class LabelParams:
    min_confidence: float = 0.6  # the best label's probability
    min_margin: float = 0.2  # ahead of the runner-up; below: ambiguous, left out
    track_window: int = 3  # probabilities averaged over this many instances of a track (1: off)
    # a second backend whose best label must agree: one for every expression (e.g. fer on real films), or
    # {expression: backend} for some (the base: fer confirms happy; docs/metrics.md)
    confirm_with: str | dict[str, str] | None = None

    def confirmers(self, requested: list[str]) -> dict[str, str]:
        """{expression: the backend that must confirm it} for the requested expressions."""
        if isinstance(self.confirm_with, str):
            return {e: self.confirm_with for e in requested}
        wanted = {canonical(e): b for e, b in (self.confirm_with or {}).items() if b}
        unknown = sorted(set(wanted) - set(requested))
        if unknown:
            raise ValueError(f"`expression.labelling.confirm_with`: {unknown} are not requested expressions "
                             f"({requested})")
        return wanted


@block
class ExpressionDatasetParams(DatasetParams):
    expression: str | None = None  # the main expression dataset; None: the one with most faces
    min_images: Count = 3  # an expression found on fewer faces gets no dataset (logged)
    trigger_template: str = "{name} expression"


@block
class ExpressionParams:
    expressions: list[str]
    classifier: dict[str, Any]
    crop: CropParams = field(default_factory=CropParams)
    labelling: LabelParams = field(default_factory=LabelParams)
    dataset: ExpressionDatasetParams = field(default_factory=ExpressionDatasetParams)
    score_backends: list[str] = field(default_factory=list)  # also scored on the demo (per backend)
    scored: list[str] = field(default_factory=lambda: ["happy", "surprised", "neutral"])  # demo accuracy


def classify(character_instances: dict[str, Any], boxes: pd.DataFrame, classifier: dict[str, Any],
             size: int = 256) -> tuple[pd.DataFrame, list[dict]]:
    """Probabilities (a column per label, common spelling) of every face in `boxes`, each cropped from its
    instance with the margin the classifier wants, and the skipped faces with their reasons."""
    model = make_expression_classifier(classifier)
    faces = {i: character_instances[i] for i in boxes.index if i in character_instances}
    probabilities, skipped = map_images(
        faces, lambda iid, image: model(face_crop(image, tuple(boxes.loc[iid]), model.margin, size)),
        f"expressions ({model.name})", keyed=True)
    columns = [canonical(label) for label in model.labels]
    return pd.DataFrame.from_dict(probabilities, orient="index", columns=columns), skipped


def second_opinions(character_instances: dict[str, Any], boxes: pd.DataFrame, params: ExpressionParams,
                    backends: set[str]) -> dict[str, pd.Series]:
    """{backend: its best label per face} for the backends that must confirm a label (`confirm_with`)."""
    opinions = {}
    for second in sorted(backends):
        opinion, _ = classify(character_instances, boxes, {"backend": second,
                                                           second: params.classifier.get(second) or {}})
        opinions[second] = opinion.idxmax(axis=1) if len(opinion) else pd.Series(dtype=str)
    return opinions


def label_rows(probabilities: pd.DataFrame, requested: list[str], labelling: LabelParams,
               confirm: dict[str, str], opinions: dict[str, pd.Series]) -> pd.DataFrame:
    """A row per face: its best label and confidence, and `expression` (the label, or empty with the reason:
    not confident, ambiguous, not requested, or not confirmed by the second backend)."""
    rows = []
    for iid, p in probabilities.iterrows():
        label, confidence, reason = label_face(p.to_numpy(), list(p.index), requested,
                                               labelling.min_confidence, labelling.min_margin)
        second = confirm.get(label)
        if second and not reason and opinions[second].get(iid) != label:
            reason = f"not confirmed: {second} says {opinions[second].get(iid, 'nothing')}"
        rows.append({"instance_id": iid, "label": label, "confidence": confidence,
                     "expression": "" if reason else label, "reason": reason})
    return pd.DataFrame(rows)


def expression_clusters(table: pd.DataFrame) -> pd.DataFrame:
    """The expression table as clusters (instance_id, cluster, assigned_by): a labelled face is a member of
    its expression; the others are noise with their reason. What the expression datasets and the curation
    app both start from."""
    sure = table.expression.astype(str) != ""
    why = ["labelled" if ok else str(reason or "not labelled") for ok, reason in
           zip(sure, table.reason.fillna(""), strict=True)]
    return pd.DataFrame({"instance_id": table.instance_id.to_numpy(),
                         "cluster": np.where(sure, table.expression, NOISE), "assigned_by": why})
