"""A film with one character: one character cluster (HDBSCAN alone calls a single group noise), and a
character never splits by pose (each track through a shot is one identity)."""

import av
import pandas as pd
import pytest

from animation_lora.clustering import ClusteringParams
from animation_lora.demo import render_demo_film
from animation_lora.ids import frame_id
from animation_lora.layers.split import LayersParams
from animation_lora.pipelines.preprocessing.character_nodes import (
    cluster_characters,
    detect_faces,
    embed_characters,
)
from animation_lora.pipelines.preprocessing.layer_nodes import segment_layers

LAYERS = LayersParams(min_instance_pixels=400, crop_margin=0.08, hole_margin=3)
BASE_CLUSTERING = ClusteringParams(min_cluster_size=15, min_samples=3, similarity_threshold=0.75,
                                   use_face_detection=True)


@pytest.mark.slow
def test_a_single_character_film_gives_one_character_cluster(tmp_path):
    film = render_demo_film(tmp_path / "solo", preset="tiny", seed=3, casts=((0,),))
    with av.open(str(film)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    truth = pd.read_parquet(film.parent / "ground_truth" / "frames.parquet")
    frames = {frame_id(i): im for i, im in enumerate(decoded)}
    index = pd.DataFrame({"frame_id": list(frames), "frame": truth.frame, "shot": truth.shot, "kept": True})
    layers = segment_layers(frames, index, LAYERS, {"backend": "mediapipe", "mediapipe": {}})
    instances, instance_index = layers["instances"], layers["instance_index"]
    faces = detect_faces(instances, {"backend": "mediapipe", "mediapipe": {}})
    embeddings, _ = embed_characters(instances, {"backend": "mobilenet_v2", "mobilenet_v2": {}})
    clusters = cluster_characters(embeddings, faces, instance_index, BASE_CLUSTERING, None)
    assert len(instances) >= 15
    assert set(clusters.cluster) - {"noise"} == {"character_0"}
    assert (clusters.cluster == "character_0").mean() >= 0.8
