"""Expression labelling: label mapping, the ambiguity rule, FaceMesh geometry on hand-built landmarks, track
smoothing, and the face crop."""

import numpy as np
import pandas as pd
import pytest

from animation_lora.faces.crops import face_crop
from animation_lora.faces.expressions import (
    BROW,
    EYE_OUTER,
    EYE_TOP,
    LIP_INNER,
    MOUTH_CORNERS,
    check_requested,
    face_geometry,
    label_face,
    landmark_probabilities,
    smooth_over_tracks,
)

RULES = dict(smile_lift=0.0, narrow_mouth=0.435, frown_lift=-0.08, softness=0.01)
LABELS = ("happy", "surprised", "neutral", "sad")


def face(corner_dy: float, mouth_width: float, mouth_open: float = 0.05, brow: float = 0.25) -> np.ndarray:
    """468 FaceMesh points (pixels, y down) with eye corners 100 px apart; the mouth centred at y = 200,
    its corners `corner_dy` eye-distances *above* the lips' centre (a smile is positive)."""
    p = np.zeros((468, 2))
    p[EYE_OUTER[0]], p[EYE_OUTER[1]] = (50, 100), (150, 100)
    p[list(EYE_TOP)] = [(75, 95), (125, 95)]
    p[list(BROW)] = [(75, 95 - brow * 100), (125, 95 - brow * 100)]
    p[LIP_INNER[0]], p[LIP_INNER[1]] = (100, 200 - mouth_open * 50), (100, 200 + mouth_open * 50)
    half = mouth_width * 50
    corner_y = 200 - corner_dy * 100
    p[MOUTH_CORNERS[0]], p[MOUTH_CORNERS[1]] = (100 - half, corner_y), (100 + half, corner_y)
    return p


def test_geometry_is_measured_in_eye_distances_and_does_not_depend_on_face_size():
    g = face_geometry(face(corner_dy=0.03, mouth_width=0.5, mouth_open=0.1, brow=0.3))
    assert g == pytest.approx({"mouth_lift": 0.03, "mouth_open": 0.1, "mouth_width": 0.5, "brow_raise": 0.3})
    big = face_geometry(face(corner_dy=0.03, mouth_width=0.5, mouth_open=0.1, brow=0.3) * 3.7 + 12)
    assert big == pytest.approx(g)


@pytest.mark.parametrize(
    "corner_dy, width, expected",
    [(0.03, 0.58, "happy"),  # corners lifted, wide mouth: a smile
     (-0.04, 0.40, "surprised"),  # the round 'O': narrow, corners not lifted
     (-0.03, 0.47, "neutral"),  # a short straight mouth
     (-0.12, 0.48, "sad")],  # corners well below the lips' centre
)
def test_landmark_rules_on_hand_built_faces(corner_dy, width, expected):
    p = landmark_probabilities(face(corner_dy, width), LABELS, **RULES)
    assert p.sum() == pytest.approx(1.0)
    assert LABELS[int(np.argmax(p))] == expected and p.max() > 0.7


def test_a_face_on_a_threshold_is_ambiguous_and_left_out():
    p = landmark_probabilities(face(corner_dy=0.0, mouth_width=0.5), LABELS, **RULES)  # smile at 50 %
    label, confidence, reason = label_face(p, LABELS, ["happy", "surprised"], 0.6, 0.2)
    assert reason.startswith(("ambiguous", "not confident")) and confidence < 0.6


def test_label_face_keeps_only_confident_unambiguous_requested_expressions():
    labels = ["happy", "surprised", "neutral"]
    assert label_face(np.array([0.8, 0.1, 0.1]), labels, ["happy"], 0.6, 0.2) == ("happy", 0.8, "")
    assert label_face(np.array([0.5, 0.4, 0.1]), labels, ["happy"], 0.4, 0.2)[2].startswith("ambiguous")
    assert label_face(np.array([0.5, 0.1, 0.4]), labels, ["happy"], 0.6, 0.05)[2].startswith("not confident")
    assert label_face(np.array([0.1, 0.1, 0.8]), labels, ["happy"], 0.6, 0.2)[2] == (
        "neutral: not a requested expression")


def test_requested_names_map_to_the_backends_spelling_and_unknown_ones_list_the_known():
    facex = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
    assert check_requested(["Happy", "surprise", "sad"], facex, "facex") == ["happy", "surprised", "sad"]
    with pytest.raises(ValueError, match=r"does not know \['smug'\]; known expressions: angry, disgust, "
                                         r"fear, happy, neutral, sad, surprised"):
        check_requested(["happy", "smug"], facex, "facex")
    with pytest.raises(ValueError, match="'landmarks' labeller does not know.*angry"):
        check_requested(["angry"], LABELS, "landmarks")


def test_track_smoothing_outvotes_a_one_frame_blip_and_keeps_tracks_apart():
    probs = pd.DataFrame({"happy": [0.9, 0.2, 0.9, 0.1], "neutral": [0.1, 0.8, 0.1, 0.9]},
                         index=["f000001_0", "f000002_0", "f000003_0", "f000002_1"])
    tracks = pd.Series({"f000001_0": "s0_t0", "f000002_0": "s0_t0", "f000003_0": "s0_t0",
                        "f000002_1": "s0_t1"})
    out = smooth_over_tracks(probs, tracks, window=3)
    assert out.loc["f000002_0"].idxmax() == "happy"  # the blip is outvoted by its neighbours
    assert out.loc["f000002_1"].tolist() == [0.1, 0.9]  # another track: untouched
    assert smooth_over_tracks(probs, tracks, window=1) is probs


def test_square_crop_pads_with_white_outside_the_image_and_resizes():
    image = np.zeros((40, 40, 4), np.uint8)
    image[..., 3] = 255
    crop = face_crop(image, (0, 0, 20, 20), margin=0.5, size=64)  # 40 px square from (-10, -10)
    assert crop.shape == (64, 64, 3)
    assert (crop[:10, :10] == 255).all() and (crop[40:, 40:] == 0).all()
