"""The expression pipeline's nodes: face crops from the character instances, an expression per face
(`animation_lora.faces`), contact sheets and one LoRA dataset per requested expression."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...backends.faces import make_expression_classifier
from ...clustering import NOISE, contact_sheets
from ...curation import apply_to_clusters, load_curation
from ...faces.crops import face_boxes, face_crop
from ...faces.expressions import canonical, check_requested, smooth_over_tracks
from ...faces.labelling import ExpressionParams, classify, expression_clusters, label_rows, second_opinions
from ...image_loop import map_images, materialise, skip_table
from ...lora_dataset import TrainingSet, main_and_each, nothing_to_teach

log = logging.getLogger(__name__)


def crop_faces(character_instances: dict[str, Any], face_table: pd.DataFrame,
               expression: ExpressionParams) -> dict[str, np.ndarray]:
    """A square crop around each detected face (the face table's box in the instance's pixels). Output:
    face_crops. No character instances at all is an error naming the pipeline to run first."""
    if not character_instances:
        raise ValueError("expression: no character instances; run `kedro run --pipelines=preprocessing` "
                         "first")
    boxes = face_boxes(face_table)
    wanted = {i: character_instances[i] for i in boxes.index if i in character_instances}
    margin, size = expression.crop.margin, expression.crop.size
    crops, _ = map_images(
        wanted, lambda iid, image: face_crop(image, tuple(boxes.loc[iid]), margin, size), "crop faces",
        keyed=True)
    return crops


def label_expressions(character_instances: dict[str, Any], face_crops: dict[str, Any],
                      face_table: pd.DataFrame, instance_index: pd.DataFrame,
                      character_clusters: pd.DataFrame, expression: ExpressionParams) -> pd.DataFrame:
    """An expression per face: the classifier's best label when it is requested, confident and unambiguous;
    otherwise an empty `expression` and the reason (no face — an animal, a robot —, no face mesh, not
    confident, ambiguous, not requested, or, with `confirm_with`, the backend that must confirm the label
    says something else). Output: expression_table, a row per character instance."""
    model = make_expression_classifier(expression.classifier)
    requested = check_requested(expression.expressions, model.labels, expression.classifier.get("backend"))
    boxes = face_boxes(face_table)
    boxes = boxes[boxes.index.isin(face_crops)]
    probabilities, skipped = classify(character_instances, boxes, expression.classifier, expression.crop.size)
    tracks = instance_index.set_index("instance_id").get("track", pd.Series(dtype=str))
    probabilities = smooth_over_tracks(probabilities, tracks, expression.labelling.track_window)
    confirm = expression.labelling.confirmers(requested)
    opinions = second_opinions(character_instances, boxes, expression, set(confirm.values()))
    labelled = label_rows(probabilities, requested, expression.labelling, confirm, opinions)
    unread = skip_table(skipped, "instance_id").assign(label="", confidence=0.0, expression="")
    no_face = face_table[~face_table.instance_id.isin(face_crops)][["instance_id", "reason"]].copy()
    no_face["reason"] = ["no face detected" + (f" ({r})" if r else "") for r in no_face.reason.fillna("")]
    table = pd.concat([labelled, unread, no_face.assign(label="", confidence=0.0, expression="")],
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
                              expression: ExpressionParams, captioning: dict[str, Any], curation: dict | None,
                              ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """A kohya dataset per requested expression found on `min_images` faces or more: the face crops (the
    expression fills the picture), captioned `<expression> expression, <prefix>`, never with a character's
    name; faces picked by the shared builder (confidence first, then spread over the characters'
    appearance), after the curation file's decisions about the expressions. Outputs:
    expression.lora_dataset (the main one) and expression.lora_datasets."""
    data = expression.dataset
    decided = load_curation(curation).expressions
    clusters = apply_to_clusters(expression_clusters(expression_table), "instance_id", decided, "expression")
    clusters = clusters[clusters.instance_id.isin(face_crops)]  # a face to learn from, or none to include
    members = clusters[clusters.cluster != NOISE]
    kept = expression_table[expression_table.instance_id.isin(members.instance_id)]
    counts = members.cluster.value_counts()
    asked = [decided.names.get(canonical(e), canonical(e)) for e in expression.expressions]
    found = [e for e in dict.fromkeys([*asked, *counts.index]) if counts.get(e, 0) >= data.min_images]
    missing = sorted(set(asked) - set(found))
    if missing:
        log.warning("Expressions without a dataset (fewer than %d faces): %s; faces per expression: %s",
                    data.min_images, missing, counts.to_dict())
    if not found:  # a film of robots or animals: the run completes, without an expression LoRA
        return nothing_to_teach("expression", (
            f"no requested expression ({expression.expressions}) was found on "
            f"`expression.dataset.min_images` = {data.min_images} faces or more (found: {counts.to_dict()}); "
            f"lower it or `expression.labelling.min_confidence`")), {}
    embeddings = character_embeddings[character_embeddings.instance_id.isin(kept.instance_id)]
    names = sorted(set(character_clusters.cluster) - {NOISE})
    main = (decided.names.get(canonical(data.expression), canonical(data.expression)) if data.expression
            else max(found, key=lambda e: counts[e]))
    return main_and_each(
        main, found, data.min_images, clusters=clusters, embeddings=embeddings, id_column="instance_id",
        images=face_crops, quality=kept.set_index("instance_id").confidence.to_dict(), what="expression",
        params=data, captioning=captioning, exclude=names, prepare=lambda item: materialise(item)[..., :3],
        decisions=decided)
