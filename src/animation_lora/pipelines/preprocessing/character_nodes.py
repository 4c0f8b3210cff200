"""Preprocessing, second half (b): character clusters (appearance vectors + HDBSCAN, optionally face-gated),
a contact sheet per cluster and the character LoRA datasets (`animation_lora.characters`)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pandas as pd
from PIL import Image

from ...backends.embedding import flatten_rgba
from ...backends.faces import make_face_detector
from ...characters import appearance_vectors, cluster_identities
from ...clustering import ClusteringParams, contact_sheets, embed_images
from ...curation import apply_to_clusters, load_curation
from ...faces.crops import framing
from ...image_loop import materialise, skip_table
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each
from ...params import Count, block
from ...shot_cache import ShotCacheParams, ShotResult, per_shot

log = logging.getLogger(__name__)


@block
class CharacterDatasetParams(DatasetParams):
    character: str | None = None  # the main character (hyper-parameter search); None: the largest cluster
    characters: list[str] | None = None  # each its own LoRA; None: every cluster with min_images or more
    min_images: Count = 5


def detect_faces(character_instances: dict[str, Any], faces: dict[str, Any],
                 cache: ShotCacheParams | None = None) -> pd.DataFrame:
    """Face detection on every character crop (the brief's `--use-face-detection`), through the shot cache.
    Output: face_table (an unreadable crop is a row with has_face false and its reason)."""
    detector = functools.cache(lambda: make_face_detector(faces))  # loaded once a crop needs it

    def best_face(iid: str, image) -> ShotResult:
        found = detector()(image)
        score, box = (found[0].score, found[0].box) if found else (0.0, (None,) * 4)
        return ShotResult(rows={"faces": [dict(instance_id=iid, face_score=float(score),
                                               **dict(zip(("fx0", "fy0", "fx1", "fy1"), box)))]})

    result, skipped = per_shot("faces", character_instances.items(), best_face, faces, cache, "detect faces",
                               len(character_instances), unit="crop")
    table = pd.DataFrame(result.rows.get("faces", []),
                         columns=["instance_id", "face_score", "fx0", "fy0", "fx1", "fy1"])
    table[["fx0", "fy0", "fx1", "fy1"]] = table[["fx0", "fy0", "fx1", "fy1"]].astype(float)  # None: NaN
    table["has_face"], table["reason"] = table.face_score > 0, ""
    return pd.concat([table, skip_table(skipped, "instance_id").assign(has_face=False)], ignore_index=True)


def embed_characters(character_instances: dict[str, Any], embedding: dict[str, Any],
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Appearance vector of every character crop (the embedding model's and the colour signature of the
    character's own pixels). Outputs: character_embeddings and character_embedding_report (the crops that
    could not be read, with the reason)."""
    table, report = embed_images(character_instances, embedding, "instance_id")
    return appearance_vectors(table, character_instances), report


def cluster_characters(character_embeddings: pd.DataFrame, face_table: pd.DataFrame,
                       instance_index: pd.DataFrame, character_clustering: ClusteringParams,
                       curation: dict | None) -> pd.DataFrame:
    """HDBSCAN over the instances (only those with a detected face when `use_face_detection`), each track one
    identity; clusters `character_0 …` by size, renamed by `names`; then the curation file's decisions about
    the characters. Output: character_clusters."""
    clusters = cluster_identities(character_embeddings, face_table, instance_index, character_clustering)
    clusters = apply_to_clusters(clusters, "instance_id", load_curation(curation).characters, "character")
    log.info("Character clusters: %s", clusters.cluster.value_counts().to_dict())
    return clusters


def cluster_contact_sheets(character_instances: dict[str, Any], character_clusters: pd.DataFrame,
                           ) -> dict[str, Image.Image]:
    """One contact sheet per character cluster (and noise), for people to check and name the clusters."""
    return contact_sheets(character_instances, character_clusters, "instance_id", "instances")


def build_character_dataset(character_instances: dict[str, Any], character_clusters: pd.DataFrame,
                            character_embeddings: pd.DataFrame, instance_index: pd.DataFrame,
                            face_table: pd.DataFrame, character_dataset: CharacterDatasetParams,
                            captioning: dict[str, Any], curation: dict | None,
                            ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """The character LoRA datasets: each selected cluster's cut-outs over white, captioned
    `<trigger>, <prefix>, <framing>`, selected by the shared builder. Outputs: character.lora_dataset (the
    main character) and character.lora_datasets (`{name: dataset}`, one LoRA per selected character)."""
    params = character_dataset
    quality = instance_index.set_index("instance_id").area.astype(float).to_dict()  # larger = more detail
    tags = framing(face_table, instance_index)
    return main_and_each(
        params.character, params.characters, params.min_images, clusters=character_clusters,
        embeddings=character_embeddings, id_column="instance_id", images=character_instances,
        quality=quality, what="character", params=params, captioning=captioning,
        prepare=lambda item: flatten_rgba(materialise(item), 255),
        facts=lambda iid: {"framing": tags.get(iid, "")}, decisions=load_curation(curation).characters)
