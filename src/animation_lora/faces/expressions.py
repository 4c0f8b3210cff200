"""Facial expressions: the geometry of FaceMesh landmarks (mouth-corner lift, mouth opening and width, brow
raise, each over the distance between the outer eye corners, so they do not depend on the face's size),
the interpretable rules that turn it into probabilities, and the labelling of a classifier's probabilities
with the requested expressions: a face whose best label is not confident, or not clearly ahead of the
runner-up, is left out with its reason (the brief: "face clear, expression unambiguous")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Spellings of the backends' labels, mapped onto one vocabulary.
SYNONYMS = {"anger": "angry", "sadness": "sad", "surprise": "surprised", "joy": "happy", "happiness": "happy"}
KNOWN = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprised")

# FaceMesh (468-point) indices.
EYE_OUTER = (33, 263)
MOUTH_CORNERS = (61, 291)
LIP_INNER = (13, 14)  # upper, lower
EYE_TOP = (159, 386)
BROW = (105, 334)


def canonical(label: str) -> str:
    return SYNONYMS.get(label.lower(), label.lower())


def check_requested(requested: Sequence[str], labels: Sequence[str], backend: str) -> list[str]:
    """The requested expressions in the common spelling; one the backend cannot label is an error listing
    the ones it knows."""
    known = [canonical(label) for label in labels]
    wanted = [canonical(e) for e in requested]
    unknown = [e for e in wanted if e not in known]
    if unknown:
        raise ValueError(
            f"`expression.expressions`: the '{backend}' labeller does not know {unknown}; "
            f"known expressions: {', '.join(known)}"
        )
    return wanted


def face_geometry(points: np.ndarray) -> dict[str, float]:
    """Mouth-corner lift (corners above the lips' centre: positive), mouth opening and width, brow raise
    (brow above the upper eyelid), all divided by the outer-eye-corner distance. `points`: (>=468, 2)
    pixels, y down."""
    p = np.asarray(points, np.float64)
    scale = max(float(np.linalg.norm(p[EYE_OUTER[0]] - p[EYE_OUTER[1]])), 1e-6)
    lips_y = p[list(LIP_INNER), 1].mean()
    return {
        "mouth_lift": float(lips_y - p[list(MOUTH_CORNERS), 1].mean()) / scale,
        "mouth_open": float(np.linalg.norm(p[LIP_INNER[0]] - p[LIP_INNER[1]])) / scale,
        "mouth_width": float(np.linalg.norm(p[MOUTH_CORNERS[0]] - p[MOUTH_CORNERS[1]])) / scale,
        "brow_raise": float(p[list(EYE_TOP), 1].mean() - p[list(BROW), 1].mean()) / scale,
    }


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))))


def landmark_probabilities(points: np.ndarray, labels: Sequence[str], smile_lift: float,
                           narrow_mouth: float, frown_lift: float, softness: float) -> np.ndarray:
    """Probabilities over `labels` (happy, surprised, neutral, sad) from three soft rules: corners lifted
    above `smile_lift` → happy; otherwise a mouth narrower than `narrow_mouth` (the round 'O') → surprised;
    otherwise corners below `frown_lift` → sad; else neutral. `softness` is how far (in eye-distance units)
    from a threshold a rule is 73 % sure (one logistic unit)."""
    g = face_geometry(points)
    smile = _sigmoid((g["mouth_lift"] - smile_lift) / softness)
    round_mouth = _sigmoid((narrow_mouth - g["mouth_width"]) / softness)
    frown = _sigmoid((frown_lift - g["mouth_lift"]) / softness)
    p = {
        "happy": smile,
        "surprised": (1 - smile) * round_mouth,
        "sad": (1 - smile) * (1 - round_mouth) * frown,
        "neutral": (1 - smile) * (1 - round_mouth) * (1 - frown),
    }
    return np.array([p[label] for label in labels])


def label_face(probabilities: np.ndarray, labels: Sequence[str], requested: Sequence[str],
               min_confidence: float, min_margin: float) -> tuple[str, float, str]:
    """(label, confidence, skip reason) of one face: the most probable label, kept when it is one of the
    `requested` expressions, at least `min_confidence` sure and `min_margin` ahead of the runner-up; else
    label '' and the reason."""
    order = np.argsort(probabilities)[::-1]
    best, confidence = canonical(labels[order[0]]), float(probabilities[order[0]])
    margin = confidence - (float(probabilities[order[1]]) if len(order) > 1 else 0.0)
    if confidence < min_confidence:
        return best, confidence, f"not confident: {best} at {confidence:.2f} < {min_confidence}"
    if margin < min_margin:
        runner = canonical(labels[order[1]])
        return best, confidence, f"ambiguous: {best} only {margin:.2f} ahead of {runner} (< {min_margin})"
    if best not in requested:
        return best, confidence, f"{best}: not a requested expression"
    return best, confidence, ""


def smooth_over_tracks(probabilities: pd.DataFrame, tracks: pd.Series, window: int) -> pd.DataFrame:
    """Each instance's probabilities averaged with its neighbours on the same track (a centred window of
    `window` instances in id order; 1: unchanged): an expression holds for a few frames, a blink does not."""
    if window <= 1:
        return probabilities
    frame = probabilities.assign(_track=tracks.reindex(probabilities.index).fillna("").to_numpy())
    frame = frame.sort_index()
    smoothed = frame.groupby("_track", group_keys=False)[list(probabilities.columns)].apply(
        lambda g: g.rolling(window, center=True, min_periods=1).mean()
    )
    return smoothed.loc[probabilities.index]
