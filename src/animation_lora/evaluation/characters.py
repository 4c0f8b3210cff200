"""Character clusters against the demo's identities: ARI, and the purity of the character dataset."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ..clustering import NOISE
from ..lora_dataset import TrainingSet


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


