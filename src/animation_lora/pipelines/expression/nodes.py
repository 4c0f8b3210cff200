"""The expression pipeline's nodes: face crops from the character instances, an expression per face
(`backends.faces` classifiers, `animation_lora.expressions` rules), contact sheets, one LoRA dataset per
requested expression, and scores against the demo's true expressions."""

from __future__ import annotations

import logging
from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...backends.embedding import flatten_rgba
from ...backends.faces import make_expression_classifier
from ...clustering import NOISE, contact_sheets
from ...expressions import canonical, check_requested, label_face, smooth_over_tracks
from ...image_loop import map_images, materialise, skip_table
from ...params import block, parse
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each, nothing_to_teach

log = logging.getLogger(__name__)


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
    min_images: int = 3  # an expression found on fewer faces gets no dataset (logged)
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


def square_crop(image: np.ndarray, box: tuple[float, ...], margin: float, size: int) -> np.ndarray:
    """The face's square crop: its longer side plus `margin` on each side, outside the image white,
    resized to `size` pixels."""
    rgb = flatten_rgba(image, 255)
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    canvas = np.full((n, n, 3), 255, np.uint8)
    h, w = rgb.shape[:2]
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + n, w), min(top + n, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = rgb[sy0:sy1, sx0:sx1, :3]
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.Resampling.LANCZOS))


def crop_faces(character_instances: dict[str, Any], face_table: pd.DataFrame,
               expression: dict[str, Any]) -> dict[str, np.ndarray]:
    """A square crop around each detected face (the face table's box in the instance's pixels). Output:
    face_crops. No character instances at all is an error naming the pipeline to run first."""
    params = parse(ExpressionParams, expression, "expression")
    if not character_instances:
        raise ValueError("expression: no character instances; run `kedro run --pipelines=preprocessing` "
                         "first")
    boxes = face_boxes(face_table)
    wanted = {i: character_instances[i] for i in boxes.index if i in character_instances}
    margin, size = params.crop.margin, params.crop.size
    crops, _ = map_images(
        wanted, lambda iid, image: square_crop(image, tuple(boxes.loc[iid]), margin, size), "crop faces",
        keyed=True)
    return crops


def face_boxes(face_table: pd.DataFrame) -> pd.DataFrame:
    """The detected faces' boxes (fx0, fy0, fx1, fy1) by instance id."""
    return face_table[face_table.has_face.astype(bool)].set_index("instance_id")[["fx0", "fy0", "fx1", "fy1"]]


def classify(character_instances: dict[str, Any], boxes: pd.DataFrame, classifier: dict[str, Any],
             size: int = 256) -> tuple[pd.DataFrame, list[dict]]:
    """Probabilities (a column per label, common spelling) of every face in `boxes`, each cropped from its
    instance with the margin the classifier wants, and the skipped faces with their reasons."""
    model = make_expression_classifier(classifier)
    faces = {i: character_instances[i] for i in boxes.index if i in character_instances}
    probabilities, skipped = map_images(
        faces, lambda iid, image: model(square_crop(image, tuple(boxes.loc[iid]), model.margin, size)),
        f"expressions ({model.name})", keyed=True)
    columns = [canonical(label) for label in model.labels]
    return pd.DataFrame.from_dict(probabilities, orient="index", columns=columns), skipped


def label_expressions(character_instances: dict[str, Any], face_crops: dict[str, Any],
                      face_table: pd.DataFrame, instance_index: pd.DataFrame,
                      character_clusters: pd.DataFrame, expression: dict[str, Any]) -> pd.DataFrame:
    """An expression per face: the classifier's best label when it is requested, confident and unambiguous;
    otherwise an empty `expression` and the reason (no face — an animal, a robot —, no face mesh, not
    confident, ambiguous, not requested, or, with `confirm_with`, the backend that must confirm the label
    says something else).
    Output: expression_table, a row per character instance."""
    params = parse(ExpressionParams, expression, "expression")
    model = make_expression_classifier(params.classifier)
    requested = check_requested(params.expressions, model.labels, params.classifier.get("backend"))
    boxes = face_boxes(face_table)
    probabilities, skipped = classify(character_instances, boxes[boxes.index.isin(face_crops)],
                                      params.classifier, params.crop.size)
    tracks = instance_index.set_index("instance_id").get("track", pd.Series(dtype=str))
    probabilities = smooth_over_tracks(probabilities, tracks, params.labelling.track_window)
    confirm = params.labelling.confirmers(requested)
    opinions = {}
    for second in sorted(set(confirm.values())):
        opinion, _ = classify(character_instances, boxes[boxes.index.isin(face_crops)],
                              {"backend": second, second: params.classifier.get(second) or {}})
        opinions[second] = opinion.idxmax(axis=1) if len(opinion) else pd.Series(dtype=str)
    rows = []
    for iid, p in probabilities.iterrows():
        label, confidence, reason = label_face(p.to_numpy(), list(p.index), requested,
                                               params.labelling.min_confidence, params.labelling.min_margin)
        second = confirm.get(label)
        if second and not reason and opinions[second].get(iid) != label:
            reason = f"not confirmed: {second} says {opinions[second].get(iid, 'nothing')}"
        rows.append({"instance_id": iid, "label": label, "confidence": confidence,
                     "expression": "" if reason else label, "reason": reason})
    unread = skip_table(skipped, "instance_id").assign(label="", confidence=0.0, expression="")
    no_face = face_table[~face_table.instance_id.isin(face_crops)][["instance_id", "reason"]].copy()
    no_face["reason"] = ["no face detected" + (f" ({r})" if r else "") for r in no_face.reason.fillna("")]
    table = pd.concat([pd.DataFrame(rows), unread, no_face.assign(label="", confidence=0.0, expression="")],
                      ignore_index=True)
    table["backend"] = model.name
    clusters = character_clusters.set_index("instance_id").cluster
    table["cluster"] = table.instance_id.map(clusters).fillna(NOISE)
    table["track"] = table.instance_id.map(tracks).fillna("")
    kept = table[table.expression != ""].expression.value_counts().to_dict()
    log.info("Expressions: %s; left out: %d", kept, int((table.expression == "").sum()))
    return table


def expression_contact_sheets(face_crops: dict[str, Any], expression_table: pd.DataFrame,
                              ) -> dict[str, Image.Image]:
    """One sheet per kept expression, most confident faces first, for people to check the labels."""
    kept = expression_table[expression_table.expression != ""]
    table = pd.DataFrame({"instance_id": kept.instance_id, "cluster": kept.expression,
                          "similarity": kept.confidence})
    return contact_sheets(face_crops, table, "instance_id", "faces")


def build_expression_datasets(face_crops: dict[str, Any], expression_table: pd.DataFrame,
                              character_embeddings: pd.DataFrame, character_clusters: pd.DataFrame,
                              expression: dict[str, Any], captioning: dict[str, Any],
                              ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """A kohya dataset per requested expression found on `min_images` faces or more: the face crops (the
    expression fills the picture; an upper-body crop would spend most pixels on clothes and pose),
    captioned `<expression> expression, <prefix>`, never with a character's name. Faces are picked by the
    shared builder (confidence first, then spread over the characters' appearance). Outputs:
    expression.lora_dataset (the main one) and expression.lora_datasets."""
    params = parse(ExpressionParams, expression, "expression")
    data = params.dataset
    kept = expression_table[expression_table.expression != ""]
    counts = kept.expression.value_counts()
    found = [canonical(e) for e in params.expressions if counts.get(canonical(e), 0) >= data.min_images]
    missing = sorted(set(map(canonical, params.expressions)) - set(found))
    if missing:
        log.warning("Expressions without a dataset (fewer than %d faces): %s; faces per expression: %s",
                    data.min_images, missing, counts.to_dict())
    if not found:  # a film of robots or animals: the run completes, without an expression LoRA
        return nothing_to_teach("expression", (
            f"no requested expression ({params.expressions}) was found on `expression.dataset.min_images` = "
            f"{data.min_images} faces or more (found: {counts.to_dict()}); lower it or "
            f"`expression.labelling.min_confidence`")), {}
    clusters = pd.DataFrame({"instance_id": kept.instance_id, "cluster": kept.expression})
    embeddings = character_embeddings[character_embeddings.instance_id.isin(kept.instance_id)]
    names = sorted(set(character_clusters.cluster) - {NOISE})
    main = canonical(data.expression) if data.expression else max(found, key=lambda e: counts[e])
    return main_and_each(
        main, found, data.min_images, clusters=clusters, embeddings=embeddings, id_column="instance_id",
        images=face_crops, quality=kept.set_index("instance_id").confidence.to_dict(), what="expression",
        params=data, captioning=captioning, exclude=names, prepare=lambda item: materialise(item)[..., :3])


def _accuracy(predicted: pd.Series, truth: pd.Series) -> float | None:
    return float((predicted == truth).mean()) if len(truth) else None


def score_expressions(expression_table: pd.DataFrame, character_instances: dict[str, Any],
                      face_crops: dict[str, Any], face_table: pd.DataFrame,
                      instance_truth: pd.DataFrame, expression: dict[str, Any], ground_truth,
                      ) -> dict[str, Any]:
    """Counts, skip reasons and, on the demo, the accuracy of the best label on faces the demo labels with a
    scored expression (happy / surprised / neutral), for the configured backend and each of
    `score_backends`; the accuracy of the kept labels (what goes into the datasets: every true face, sad
    ones too) and how many were kept; face-detection recall (true instances whose face was found)."""
    params = parse(ExpressionParams, expression, "expression")
    reasons = expression_table[expression_table.expression == ""].reason
    out: dict[str, Any] = {
        "ground_truth": ground_truth is not None,
        "backend": str(params.classifier.get("backend")),
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
    scored = truth[truth.expression.isin(params.scored)].set_index("instance_id").expression
    table = expression_table.set_index("instance_id")
    faced = scored[scored.index.isin(face_crops)]
    out["scored_faces"] = int(len(faced))
    out["accuracy"] = _accuracy(table.label.reindex(faced.index), faced)
    every = truth.set_index("instance_id").expression  # sad faces too: one labelled happy is a wrong pick
    kept = table[table.expression != ""].expression
    kept = kept[kept.index.isin(every.index)]
    out["kept_accuracy"] = _accuracy(kept, every.reindex(kept.index))
    per_backend = {out["backend"]: out["accuracy"]}
    for backend in params.score_backends:
        if backend != out["backend"]:
            boxes = face_boxes(face_table).loc[faced.index]
            p, _ = classify(character_instances, boxes, {"backend": backend})
            best = p.idxmax(axis=1) if len(p) else pd.Series(dtype=str)
            per_backend[backend] = _accuracy(best.reindex(faced.index).fillna("none"), faced)
    out["accuracy_per_backend"] = per_backend
    log.info("Expression metrics: %s", out)
    return out
