"""Expressions against the demo's true expressions: accuracy per backend, of the kept labels, and the
face-detection recall."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ..faces.crops import face_boxes
from ..faces.labelling import ExpressionParams, classify

log = logging.getLogger(__name__)


def _accuracy(predicted: pd.Series, truth: pd.Series) -> float | None:
    return float((predicted == truth).mean()) if len(truth) else None


def score_expressions(expression_table: pd.DataFrame, character_instances: dict[str, Any],
                      face_crops: dict[str, Any], face_table: pd.DataFrame,
                      instance_truth: pd.DataFrame, expression: ExpressionParams, ground_truth,
                      ) -> dict[str, Any]:
    """Counts, skip reasons and, on the demo, the accuracy of the best label on faces the demo labels with a
    scored expression (happy / surprised / neutral), for the configured backend and each of
    `score_backends`; the accuracy of the kept labels (what goes into the datasets: every true face, sad
    ones too) and how many were kept; face-detection recall (true instances whose face was found)."""
    reasons = expression_table[expression_table.expression == ""].reason
    out: dict[str, Any] = {
        "ground_truth": ground_truth is not None,
        "backend": str(expression.classifier.get("backend")),
        "instances": int(len(expression_table)),
        "faces": int(len(face_crops)),
        "kept": expression_table[expression_table.expression != ""].expression.value_counts().to_dict(),
        "skipped": reasons.str.split(":").str[0].str.split(" \\(").str[0].value_counts().to_dict(),
    }
    if ground_truth is None:
        return out
    truth = instance_truth.dropna(subset=["identity"]).copy()
    truth["frame"] = [int(i.split("_")[0][1:]) for i in truth.instance_id]
    gt = ground_truth.instances[["frame", "character", "expression"]]
    truth = truth.merge(gt, left_on=["frame", "identity"], right_on=["frame", "character"])
    has_face = face_table.set_index("instance_id").has_face.astype(bool)
    out["face_detection_recall"] = float(has_face.reindex(truth.instance_id).fillna(False).mean())
    scored = truth[truth.expression.isin(expression.scored)].set_index("instance_id").expression
    table = expression_table.set_index("instance_id")
    faced = scored[scored.index.isin(face_crops)]
    out["scored_faces"] = int(len(faced))
    out["accuracy"] = _accuracy(table.label.reindex(faced.index), faced)
    every = truth.set_index("instance_id").expression  # sad faces too: one labelled happy is a wrong pick
    kept = table[table.expression != ""].expression
    kept = kept[kept.index.isin(every.index)]
    out["kept_accuracy"] = _accuracy(kept, every.reindex(kept.index))
    per_backend = {out["backend"]: out["accuracy"]}
    for backend in expression.score_backends:
        if backend != out["backend"]:
            boxes = face_boxes(face_table).loc[faced.index]
            p, _ = classify(character_instances, boxes, {"backend": backend})
            best = p.idxmax(axis=1) if len(p) else pd.Series(dtype=str)
            per_backend[backend] = _accuracy(best.reindex(faced.index).fillna("none"), faced)
    out["accuracy_per_backend"] = per_backend
    log.info("Expression metrics: %s", out)
    return out


