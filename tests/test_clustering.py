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


def test_one_group_is_one_cluster_not_noise():
    """A film with one character (or one location): HDBSCAN alone calls everything noise."""
    rng = np.random.default_rng(1)
    x = np.eye(8)[0] + 0.05 * rng.standard_normal((40, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = cluster_embeddings([f"i{k}" for k in range(40)], x, "character", ClusteringParams(15, 3, 0.75))
    assert set(out.cluster) == {"character_0"}


def test_a_track_is_one_identity_even_when_its_poses_differ():
    """Two tracks of one character, each with two poses far apart: clusters follow the tracks, not poses."""
    rng = np.random.default_rng(2)
    pose_a, pose_b, other = np.eye(8)[0], np.eye(8)[1], np.eye(8)[4]
    identity = np.eye(8)[2] * 2.0  # what the character looks like whatever the pose
    parts, tracks = [], []
    for t in range(2):
        for pose in (pose_a, pose_b):
            parts.append(identity + pose + 0.05 * rng.standard_normal((10, 8)))
            tracks += [f"t{t}"] * 10
    parts.append(other * 3 + 0.05 * rng.standard_normal((20, 8)))
    tracks += ["t2"] * 20
    x = np.vstack(parts)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"i{k}" for k in range(len(x))]
    out = cluster_embeddings(ids, x, "character", ClusteringParams(8, 3, 0.75), groups=tracks)
    by_track = out.assign(track=tracks).groupby("track").cluster.agg(set)
    assert all(len(c) == 1 for c in by_track)  # a track never splits
    assert by_track["t0"] == by_track["t1"] != by_track["t2"]


def test_no_cluster_error_names_the_cause():
    df = pd.DataFrame({"id": list("ab"), "cluster": [NOISE, NOISE], "assigned_by": ["no face", "no face"]})
    cause = r"all 2 character items are noise.*'no face': 2.*use_face_detection"
    with pytest.raises(ValueError, match=cause):
        select_cluster(df, None, "character")


def test_two_views_of_one_place_merge_and_different_places_do_not():
    """Known geometry: a place seen from two views (centroids at cosine 0.95) and another place (cosine 0)."""
    from animation_lora.clustering import merge_similar

    rng = np.random.default_rng(0)
    view_a = np.array([1.0, 0.0, 0.0])
    view_b = np.array([0.95, np.sqrt(1 - 0.95**2), 0.0])  # cosine 0.95 with view_a
    other = np.array([0.0, 0.0, 1.0])
    vectors = np.concatenate([c + 0.01 * rng.standard_normal((10, 3)) for c in (view_a, view_b, other)])
    labels = np.repeat([0, 1, 2], 10)
    labels[0] = -1  # noise stays noise
    merged = merge_similar(labels, vectors, 0.9)
    assert merged[0] == -1 and len(set(merged[1:20])) == 1 and set(merged[20:]) == {2}
    assert set(merge_similar(labels, vectors, 0.99)) == {-1, 0, 1, 2}  # a stricter threshold keeps both views
