"""Preprocessing, second half (b): character clusters (embeddings + HDBSCAN, optionally face-gated),
a contact sheet per cluster, the character LoRA dataset, and scores against the demo's identities."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from ...backends.embedding import flatten_rgba
from ...backends.faces import make_face_detector
from ...clustering import (
    NOISE,
    ClusteringParams,
    cluster_embeddings,
    colour_signature,
    contact_sheets,
    embed_images,
)
from ...image_loop import map_images, materialise, skip_table
from ...params import block, parse
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each

log = logging.getLogger(__name__)


@block
class CharacterDatasetParams(DatasetParams):
    character: str | None = None  # the main character (hyper-parameter search); None: the largest cluster
    characters: list[str] | None = None  # each its own LoRA; None: every cluster with min_images or more
    min_images: int = 5


def detect_faces(character_instances: dict[str, Any], faces: dict[str, Any]) -> pd.DataFrame:
    """Face detection on every character crop (the brief's `--use-face-detection`). Output: face_table
    (an unreadable crop is a row with has_face false and its reason)."""
    detector = make_face_detector(faces)

    def best_face(image):
        found = detector(image)
        return (found[0].score, *found[0].box) if found else (0.0, np.nan, np.nan, np.nan, np.nan)

    results, skipped = map_images(character_instances, best_face, "detect faces")
    table = pd.DataFrame([(k, *v) for k, v in results.items()],
                         columns=["instance_id", "face_score", "fx0", "fy0", "fx1", "fy1"])
    table["has_face"], table["reason"] = table.face_score > 0, ""
    return pd.concat([table, skip_table(skipped, "instance_id").assign(has_face=False)], ignore_index=True)


def embed_characters(character_instances: dict[str, Any], embedding: dict[str, Any],
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Appearance vector of every character crop: the embedding model's vector and the colour signature of
    the character's own pixels (what it wears, its skin and hair: an identity that framing and pose change
    little), each unit-norm, side by side. Outputs: character_embeddings and character_embedding_report
    (the crops that could not be read, with the reason)."""
    table, report = embed_images(character_instances, embedding, "instance_id")
    signatures = [colour_signature(materialise(character_instances[i])) for i in table.instance_id]
    table["embedding"] = [
        (np.concatenate([v / max(np.linalg.norm(v), 1e-8), c]) / np.sqrt(2)).astype(np.float32)
        for v, c in zip(table.embedding, signatures)
    ]
    return table, report


def cluster_characters(character_embeddings: pd.DataFrame, face_table: pd.DataFrame,
                       instance_index: pd.DataFrame, clustering: dict[str, Any]) -> pd.DataFrame:
    """HDBSCAN over the instances (only those with a detected face when `use_face_detection`), each track
    (the same instance through its shot) one identity; clusters `character_0 …` by size, renamed by
    `names`. Face-less instances are `noise` with that reason."""
    params = parse(ClusteringParams, clustering, "preprocessing.character_clustering")
    emb = character_embeddings.merge(face_table[["instance_id", "has_face"]], on="instance_id", how="left")
    if "track" in instance_index:
        emb = emb.merge(instance_index[["instance_id", "track"]], on="instance_id", how="left")
    gated = emb[emb.has_face.fillna(False).astype(bool)] if params.use_face_detection else emb
    vectors = np.stack(gated.embedding.to_numpy()) if len(gated) else np.zeros((0, 1))
    tracks = list(gated.track.fillna(gated.instance_id)) if "track" in gated else None
    clusters = cluster_embeddings(list(gated.instance_id), vectors, "character", params, groups=tracks)
    dropped = emb[~emb.instance_id.isin(gated.instance_id)]
    faceless = pd.DataFrame(
        {"id": dropped.instance_id, "cluster": NOISE, "similarity": 0.0, "assigned_by": "no face"})
    out = pd.concat([clusters, faceless], ignore_index=True).rename(columns={"id": "instance_id"})
    log.info("Character clusters: %s", out.cluster.value_counts().to_dict())
    return out


def cluster_contact_sheets(character_instances: dict[str, Any], character_clusters: pd.DataFrame,
                           ) -> dict[str, Image.Image]:
    """One contact sheet per character cluster (and noise), for people to check and name the clusters."""
    return contact_sheets(character_instances, character_clusters, "instance_id", "instances")


def framing(face_table: pd.DataFrame, instance_index: pd.DataFrame) -> dict[str, str]:
    """A framing tag per instance with a face, from the face's height over the instance's: `close-up`
    (>= 0.45), `upper body` (>= 0.2), `full body` — what varies between images, so the trigger binds to
    the identity rather than to one framing."""
    boxes = instance_index.set_index("instance_id")
    faces = face_table[face_table.has_face.astype(bool)].set_index("instance_id")
    tags = {}
    for iid, face in faces.iterrows():
        if iid in boxes.index:
            share = (face.fy1 - face.fy0) / max(float(boxes.at[iid, "y1"] - boxes.at[iid, "y0"]), 1.0)
            tags[iid] = "close-up" if share >= 0.45 else "upper body" if share >= 0.2 else "full body"
    return tags


def build_character_dataset(character_instances: dict[str, Any], character_clusters: pd.DataFrame,
                            character_embeddings: pd.DataFrame, instance_index: pd.DataFrame,
                            face_table: pd.DataFrame, dataset: dict[str, Any], captioning: dict[str, Any],
                            ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """The character LoRA datasets: each selected cluster's cut-outs over white, captioned
    `<trigger>, <prefix>, <framing>`, selected by the shared builder. Outputs: character.lora_dataset (the
    main character) and character.lora_datasets (`{name: dataset}`, one LoRA per selected character)."""
    params = parse(CharacterDatasetParams, dataset, "preprocessing.character_dataset")
    quality = instance_index.set_index("instance_id").area.astype(float).to_dict()  # larger = more detail
    tags = framing(face_table, instance_index)
    common = dict(clusters=character_clusters, embeddings=character_embeddings, id_column="instance_id",
                  images=character_instances, quality=quality, what="character", params=params,
                  captioning=captioning, prepare=lambda item: flatten_rgba(materialise(item), 255),
                  facts=lambda iid: {"framing": tags.get(iid, "")})
    return main_and_each(params.character, params.characters, params.min_images, **common)


def score_characters(character_clusters: pd.DataFrame, instance_truth: pd.DataFrame,
                     character_dataset: TrainingSet, ground_truth) -> dict[str, Any]:
    """ARI of the clusters against the true identities (instances matched to a true character), and the
    purity of the character dataset (share of its images whose identity is its majority identity)."""
    if ground_truth is None:
        return {"ground_truth": False}
    merged = character_clusters.merge(instance_truth, on="instance_id").dropna(subset=["identity"])
    in_set = merged[merged.instance_id.isin(list(character_dataset.images))]
    majority = in_set.identity.value_counts()
    noise = character_clusters.cluster == NOISE
    return {
        "ground_truth": True,
        "instances_scored": int(len(merged)),
        "clusters": sorted(set(character_clusters.cluster) - {NOISE}),
        "noise_fraction": float(noise.mean()) if len(noise) else 0.0,
        "cluster_ari": float(adjusted_rand_score(merged.identity, merged.cluster)) if len(merged) else 0.0,
        "dataset_identity": str(majority.index[0]) if len(majority) else None,
        "dataset_purity": float(majority.iloc[0] / majority.sum()) if len(majority) else 0.0,
        "dataset_images": len(character_dataset.images),
    }
