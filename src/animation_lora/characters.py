"""Character identities: an appearance vector per instance (the embedding model's vector beside the colour
signature of the character's own pixels) and clusters of instances, each track one identity, optionally only
the instances with a detected face."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .clustering import NOISE, ClusteringParams, cluster_embeddings, colour_signature
from .image_loop import materialise


def appearance_vectors(table: pd.DataFrame, instances: dict[str, Any]) -> pd.DataFrame:
    """`table` (instance_id, embedding) with each embedding replaced by [embedding, colour signature] (each
    unit-norm, the pair scaled back to unit norm): what a character wears, its skin and hair are an
    identity that framing and pose change little."""
    signatures = [colour_signature(materialise(instances[i])) for i in table.instance_id]
    table["embedding"] = [
        (np.concatenate([v / max(np.linalg.norm(v), 1e-8), c]) / np.sqrt(2)).astype(np.float32)
        for v, c in zip(table.embedding, signatures)
    ]
    return table


def cluster_identities(embeddings: pd.DataFrame, face_table: pd.DataFrame, instance_index: pd.DataFrame,
                       params: ClusteringParams) -> pd.DataFrame:
    """HDBSCAN over the instances (only those with a detected face when `use_face_detection`), each track one
    identity; clusters `character_0 …` by size, renamed by `names`. Face-less instances are `noise` with that
    reason. Columns: instance_id, cluster, similarity, assigned_by. A film where the segmentation found no
    character at all is an error saying so (there is no character LoRA to make)."""
    if embeddings.empty:
        found = ("the segmentation kept no character instance" if instance_index.empty else
                 f"none of the {len(instance_index)} character instances could be read (see "
                 f"character_embedding_report)")
        raise ValueError(f"No character was found in the film: {found} — see layer_index and "
                         f"frames_contact_sheet. A film needs a character on screen for the character LoRA")
    emb = embeddings.merge(face_table[["instance_id", "has_face"]], on="instance_id", how="left")
    if "track" in instance_index:
        emb = emb.merge(instance_index[["instance_id", "track"]], on="instance_id", how="left")
    gated = emb[emb.has_face.fillna(False).astype(bool)] if params.use_face_detection else emb
    vectors = np.stack(gated.embedding.to_numpy()) if len(gated) else np.zeros((0, 1))
    tracks = list(gated.track.fillna(gated.instance_id)) if "track" in gated else None
    clusters = cluster_embeddings(list(gated.instance_id), vectors, "character", params, groups=tracks)
    dropped = emb[~emb.instance_id.isin(gated.instance_id)]
    faceless = pd.DataFrame(
        {"id": dropped.instance_id, "cluster": NOISE, "similarity": 0.0, "assigned_by": "no face"})
    return pd.concat([clusters, faceless], ignore_index=True).rename(columns={"id": "instance_id"})
