"""Face detection on character crops: MediaPipe's bundled short-range BlazeFace (embedded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedding import flatten_rgba
from .factory import backend_factory


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the image given
    score: float


class MediaPipeFaceDetector:
    name = "mediapipe"

    def __init__(self, model_selection: int = 0, min_confidence: float = 0.5):
        import mediapipe as mp

        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=min_confidence
        )

    def __call__(self, image: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(flatten_rgba(image))
        h, w = rgb.shape[:2]
        faces = []
        for d in self._detector.process(rgb).detections or []:
            b = d.location_data.relative_bounding_box
            faces.append(
                Face(
                    (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h),
                    float(d.score[0]),
                )
            )
        return sorted(faces, key=lambda f: -f.score)


make_face_detector = backend_factory("faces", {"mediapipe": MediaPipeFaceDetector})
