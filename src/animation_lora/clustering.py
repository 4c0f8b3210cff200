"""HDBSCAN clustering of embeddings, shared by characters and scenes (the brief's settings:
min_cluster_size 15, min_samples 3, similarity_threshold 0.75)."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any

import cv2
import numpy as np
import pandas as pd
from annotated_types import Ge
from PIL import Image
from sklearn.cluster import HDBSCAN

from .backends.embedding import flatten_rgba, make_embedder
from .ids import safe_name
from .image_loop import map_images, materialise, skip_table
from .imaging import contact_sheet
from .params import Cosine, Count, block

NOISE = "noise"


@block
class ClusteringParams:
    min_cluster_size: Annotated[int, Ge(2)] = 15  # HDBSCAN's: a cluster is two items or more
    min_samples: Count = 3
    similarity_threshold: Cosine = 0.75  # a noise point joins the most similar cluster above this cosine
    merge_above: Cosine | None = None  # clusters whose centroids' cosine is above this are one (null: never)
    names: dict[str, str] = field(default_factory=dict)  # e.g. {character_0: marco}
    use_face_detection: bool = False  # characters: cluster only the instances with a detected face


EMBED_BATCH = 64  # pictures loaded at once for the embedding model: memory flat in the film's length


def embed_images(
    images: dict[str, Any],
    embedding: dict[str, Any],
    id_column: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The embedding of every readable image, and the skipped ones (`id_column`, reason)."""
    embedder = make_embedder(embedding)
    done, skipped = map_images({i: images[i] for i in sorted(images)}, lambda batch: list(embedder(batch)),
                               f"embed ({embedder.name})", batch=EMBED_BATCH)
    table = pd.DataFrame({id_column: list(done), "embedding": [v.astype(np.float32) for v in done.values()]},
                         columns=[id_column, "embedding"])
    return table, skip_table(skipped, id_column)


def colour_signature(rgba: np.ndarray, bins: tuple[int, int] = (18, 4)) -> np.ndarray:
    """Unit-norm square root of the hue x saturation histogram of an image's opaque pixels: what a
    character wears and its skin and hair, whatever its pose or framing (cosine = Bhattacharyya)."""
    rgb = rgba[..., :3] if rgba.ndim == 3 else np.dstack([rgba] * 3)
    mask = (rgba[..., 3] > 127) if rgba.ndim == 3 and rgba.shape[2] == 4 else np.ones(rgb.shape[:2], bool)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), list(bins), [0, 180, 0, 256]).ravel()
    root = np.sqrt(hist / max(hist.sum(), 1.0))
    return (root / max(np.linalg.norm(root), 1e-8)).astype(np.float32)


def _hdbscan(vectors: np.ndarray, params: ClusteringParams) -> np.ndarray:
    """HDBSCAN labels; when it finds no cluster at all among at least `min_cluster_size` items, the items
    may be one group (a film with one character or one location): refit allowing a single cluster."""
    n = len(vectors)
    if n < max(params.min_cluster_size, params.min_samples, 2):
        return np.full(n, -1)
    fit = dict(min_cluster_size=params.min_cluster_size, min_samples=params.min_samples, copy=True)
    raw = HDBSCAN(**fit).fit_predict(vectors)
    if (raw < 0).all():
        raw = HDBSCAN(**fit, allow_single_cluster=True).fit_predict(vectors)
    return raw


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-8)


def merge_similar(labels: np.ndarray, vectors: np.ndarray, above: float) -> np.ndarray:
    """Cluster labels (-1 noise) with every pair of clusters whose centroids' cosine is above `above` made
    one, transitively: HDBSCAN splits one place into two when its shots frame it differently (the demo's
    beach: two views at cosine 0.95, while different places are at most 0.68)."""
    found = sorted(set(labels[labels >= 0].tolist()))
    if len(found) < 2:
        return labels
    centroids = _unit(np.stack([vectors[labels == k].mean(0) for k in found]))
    root = {k: k for k in found}

    def top(k):
        while root[k] != k:
            k = root[k]
        return k

    cosine = centroids @ centroids.T
    for i, j in zip(*np.nonzero(np.triu(cosine > above, 1))):
        root[top(found[j])] = top(found[i])
    return np.array([top(k) if k >= 0 else k for k in labels])


def cluster_embeddings(
    ids: list[str],
    vectors: np.ndarray,
    prefix: str,
    params: ClusteringParams,
    groups: list[str] | None = None,
    smooth: bool = True,
) -> pd.DataFrame:
    """Cluster L2-normalised vectors; clusters are named `<prefix>_0, _1 …` by decreasing size, then renamed
    by `params.names`. `groups` (e.g. the track of each instance through its shot) are one identity each:
    an item is clustered on the mean of its own vector and its group's (`smooth`), and the whole group
    takes the cluster most of its members fall in, so a character never splits by pose within a shot. A
    noise point joins the cluster whose centroid it is most similar to (cosine) when that similarity is
    above `similarity_threshold`. Returns id, cluster, similarity (to its cluster's centroid), assigned_by."""
    n = len(ids)
    if groups is not None and n and smooth:
        g = pd.Series(list(groups))
        means = {k: _unit(vectors[idx].mean(0)) for k, idx in g.groupby(g).groups.items()}
        vectors = _unit(0.5 * vectors + 0.5 * np.stack([means[k] for k in g]))
    raw = _hdbscan(vectors, params)
    assigned = np.where(raw >= 0, "hdbscan", NOISE).astype(object)
    if groups is not None and (raw >= 0).any():
        for _, idx in pd.Series(list(groups)).groupby(list(groups)).groups.items():
            votes = pd.Series(raw[idx][raw[idx] >= 0]).value_counts()
            if len(votes):
                changed = raw[idx] != votes.index[0]
                assigned[np.asarray(idx)[changed]] = "track"
                raw[idx] = votes.index[0]
    if params.merge_above is not None:
        raw = merge_similar(raw, vectors, params.merge_above)
    sizes = pd.Series(raw[raw >= 0]).value_counts()
    rename = {old: f"{prefix}_{new}" for new, old in enumerate(sizes.index)}
    names = np.array([rename.get(r, NOISE) for r in raw], dtype=object)
    similarity = np.zeros(n)
    if len(rename):
        labels = list(rename.values())
        centroids = np.stack([vectors[names == c].mean(0) for c in labels])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True).clip(1e-8)
        sims = vectors @ centroids.T
        for i in range(n):
            if names[i] == NOISE:
                best = int(np.argmax(sims[i]))
                if sims[i, best] > params.similarity_threshold:
                    names[i], assigned[i] = labels[best], "similarity"
            similarity[i] = sims[i, labels.index(names[i])] if names[i] != NOISE else float(sims[i].max())
    clusters = pd.DataFrame({"id": ids, "cluster": names, "similarity": similarity, "assigned_by": assigned})
    return apply_names(clusters, params.names)


def apply_names(clusters: pd.DataFrame, names: dict[str, str] | None) -> pd.DataFrame:
    """Rename clusters by a user mapping (`character_0: marco`); a key that is no cluster is an error."""
    names = {c: safe_name(n, f"The name of cluster `{c}` (`names.{c}`)") for c, n in (names or {}).items()}
    given: dict[str, list[str]] = {}
    for cluster, name in sorted(names.items()):
        given.setdefault(name, []).append(cluster)
    twice = {name: found for name, found in given.items() if len(found) > 1}
    if twice:
        name, found = next(iter(twice.items()))
        raise ValueError(f"Cluster names give '{name}' to {len(found)} clusters ({', '.join(found)}): a "
                         f"name is one character or place; `names` does not merge clusters")
    known = sorted(set(clusters.cluster) - {NOISE})
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(
            f"Cluster names refer to clusters that do not exist: {unknown}; the clusters are {known}"
        )
    out = clusters.copy()
    out["cluster"] = out.cluster.map(lambda c: names.get(c, c))
    return out


def select_cluster(clusters: pd.DataFrame, wanted: str | None, what: str) -> str:
    """The named cluster, or the largest one when no name is given."""
    counts = clusters[clusters.cluster != NOISE].cluster.value_counts()
    if counts.empty:
        why = clusters.assigned_by.value_counts().to_dict() if "assigned_by" in clusters else {}
        raise ValueError(
            f"No {what} cluster was found: all {len(clusters)} {what} items are noise (by cause: {why}). "
            f"'no face': the face detector found no face (turn use_face_detection off); 'noise' with fewer "
            f"items than min_cluster_size: the film gave too few {what} images (sample more frames)"
        )
    if wanted is None:
        return str(counts.index[0])
    if wanted not in counts.index:
        raise ValueError(f"No {what} cluster named '{wanted}'; the clusters are {sorted(counts.index)}")
    return wanted


def contact_sheets(
    images: dict[str, Any], clusters: pd.DataFrame, id_column: str, what: str, max_per_sheet: int = 40
) -> dict[str, Image.Image]:
    """One sheet per cluster (and noise): its members most similar to the centroid first."""
    sheets = {}
    for cluster, group in clusters.groupby("cluster"):
        group = group.sort_values("similarity", ascending=False).head(max_per_sheet)
        pictures = [flatten_rgba(materialise(images[i]), 255) for i in group[id_column]]
        captions = [f"{i} {s:.2f}" for i, s in zip(group[id_column], group.similarity)]
        title = f"{cluster}: {int((clusters.cluster == cluster).sum())} {what} (best {len(group)} shown)"
        sheets[cluster] = Image.fromarray(contact_sheet(pictures, captions, thumb=128, cols=8, title=title))
    return sheets
