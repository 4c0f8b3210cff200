import numpy as np
import pandas as pd
import pytest

from animation_lora.clustering import NOISE, ClusteringParams, apply_names, cluster_embeddings, select_cluster


def blobs(seed=0):
    """Three tight groups of unit vectors (sizes 30, 20, 12) and one outlier far from everything."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3]
    groups = [c + 0.03 * rng.standard_normal((n, 8)) for c, n in zip(centres, (30, 20, 12))]
    far = -np.ones(8)
    x = np.vstack(groups + [far[None]])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_clusters_are_named_by_size_and_near_noise_joins_by_similarity():
    x = blobs()
    ids = [f"i{k}" for k in range(len(x))]
    out = cluster_embeddings(
        ids, x, "scene", ClusteringParams(min_cluster_size=10, min_samples=3, similarity_threshold=0.75)
    )
    sizes = out[out.assigned_by == "hdbscan"].cluster.value_counts()
    assert list(sizes.index) == ["scene_0", "scene_1", "scene_2"] and list(sizes) == [30, 20, 12]
    far = out.iloc[-1]
    assert far.cluster == NOISE and far.assigned_by == NOISE and far.similarity < 0.75
    # a noise point joins the cluster it is most similar to once its similarity is above the threshold
    loose = cluster_embeddings(
        ids, x, "scene", ClusteringParams(10, 3, similarity_threshold=far.similarity - 0.01)
    )
    centroids = {
        c: x[(loose.cluster == c).to_numpy()[:-1].nonzero()[0]].mean(0)
        for c in ("scene_0", "scene_1", "scene_2")
    }
    best = max(centroids, key=lambda c: x[-1] @ centroids[c] / np.linalg.norm(centroids[c]))
    assert loose.iloc[-1].cluster == best and loose.iloc[-1].assigned_by == "similarity"


def test_too_few_items_are_all_noise():
    out = cluster_embeddings(["a", "b"], blobs()[:2], "character", ClusteringParams(15, 3, 0.75))
    assert (out.cluster == NOISE).all()


def test_names_and_selection_errors_list_the_clusters():
    df = pd.DataFrame({"id": list("abcd"), "cluster": ["character_0", "character_0", "character_1", NOISE]})
    named = apply_names(df, {"character_0": "marco"})
    assert list(named.cluster) == ["marco", "marco", "character_1", NOISE]
    with pytest.raises(ValueError, match=r"\['character_7'\].*\['character_0', 'character_1'\]"):
        apply_names(df, {"character_7": "luca"})
    assert select_cluster(named, None, "character") == "marco"
    assert select_cluster(named, "character_1", "character") == "character_1"
    with pytest.raises(ValueError, match=r"No character cluster named 'luca'.*\['character_1', 'marco'\]"):
        select_cluster(named, "luca", "character")
