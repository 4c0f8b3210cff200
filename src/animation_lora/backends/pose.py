"""Pose estimation on character crops, one keypoint format for every backend: COCO-17 (x, y, score) in the
pixels of the image given (the node adds the crop's offset in the frame).

- `mediapipe` (embedded): MediaPipe Pose shipped in the 0.10.21 wheel (model_complexity 1: 0 and 2 download),
  run on the crop padded to a square with a margin and upscaled (it expects a person filling about half the
  picture); its 33 landmarks mapped to COCO-17 by `MEDIAPIPE_TO_COCO17`.
- `rtmpose` (studio): RTMPose through `rtmlib` with local ONNX files only (a pose model, optionally a
  YOLOX person detector; without one the crop's own box is the person box). rtmlib downloads any path that
  does not exist, so every path is checked first and a missing one is an error naming its parameter.
- `mmpose` (studio, the optional `[mmpose]` extra): `init_model` + `inference_topdown` with a local config
  and checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..runtime import device_name
from .embedding import flatten_rgba
from .factory import backend_factory
from .weights import checkpoint_path, verified

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
          "left_knee", "right_knee", "left_ankle", "right_ankle")

# MediaPipe Pose landmark index of each COCO-17 joint (MediaPipe's eyes are the eye centres: 2 and 5).
MEDIAPIPE_TO_COCO17 = {
    "nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
}


def mediapipe_to_coco17(landmarks: np.ndarray) -> np.ndarray:
    """(33, 3) MediaPipe landmarks (x, y, visibility) -> (17, 3) COCO-17 in the same units."""
    if landmarks.shape != (33, 3):
        raise ValueError(f"MediaPipe Pose gives 33 landmarks of (x, y, visibility), not {landmarks.shape}")
    return landmarks[[MEDIAPIPE_TO_COCO17[name] for name in COCO17]].astype(np.float32)


class PoseEstimator(Protocol):
    name: str

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """COCO-17 (17, 3) x, y, score in the image's pixels; None when no person pose is found."""


def pad_to_square(image: np.ndarray, margin: float, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The image (RGBA flattened over grey) centred on a square `margin` x its longer side larger, padded
    grey, resized to size x size. Returns (crop, scale, offset): original = crop / scale + offset."""
    rgb = flatten_rgba(image)
    h, w = rgb.shape[:2]
    side = int(round(max(h, w) * (1 + 2 * margin)))
    x0, y0 = (w - side) // 2, (h - side) // 2
    canvas = np.full((side, side, 3), 128, np.uint8)
    canvas[-y0 : -y0 + h, -x0 : -x0 + w] = rgb
    scale = size / side
    crop = np.asarray(Image.fromarray(canvas).resize((size, size), Image.BICUBIC))
    return crop, scale, np.array([x0, y0], np.float32)


class MediaPipePose:
    name = "mediapipe"

    def __init__(self, margin: float = 0.25, size: int = 256, min_confidence: float = 0.3,
                 min_score: float = 0.3):
        import mediapipe as mp

        self.margin, self.size, self.min_score = margin, size, min_score
        # model_complexity 1 is the model the wheel ships (0 and 2 download theirs)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                            min_detection_confidence=min_confidence)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        crop, scale, offset = pad_to_square(image, self.margin, self.size)
        found = self._pose.process(np.ascontiguousarray(crop)).pose_landmarks
        if found is None:
            return None
        marks = np.array([(p.x * self.size, p.y * self.size, p.visibility) for p in found.landmark],
                         np.float32)
        coco = mediapipe_to_coco17(marks)
        if float(np.median(coco[:, 2])) < self.min_score:
            return None
        coco[:, :2] = coco[:, :2] / scale + offset
        return coco


def _alpha_box(image: np.ndarray) -> list[float]:
    """The person box of a crop: its alpha's box (an RGBA cut-out), else the whole image."""
    h, w = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 4 and image[..., 3].any():
        ys, xs = np.nonzero(image[..., 3])
        return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    return [0.0, 0.0, float(w), float(h)]


class RtmPose:
    """RTMPose-m (or any RTMPose ONNX with SimCC outputs) through rtmlib, from local files only."""

    name = "rtmpose"

    def __init__(self, checkpoint: str | None = None, input_size: list[int] | None = None,
                 detector: dict[str, Any] | None = None, min_score: float = 0.3, device: str = "auto"):
        from rtmlib import YOLOX, RTMPose

        pose = checkpoint_path(checkpoint, "pose.estimator.rtmpose.checkpoint")
        size = tuple(input_size or (192, 256))  # (width, height), RTMPose-m body 256x192
        self._pose = RTMPose(str(pose), model_input_size=size, backend="onnxruntime",
                             device=device_name(device))
        self._detector = None
        if detector:
            unknown = sorted(set(detector) - {"checkpoint", "input_size", "score"})
            if unknown:
                raise ValueError(f"Invalid parameters: `pose.estimator.rtmpose.detector.{unknown[0]}`: "
                                 "unknown key; known keys: checkpoint, input_size, score")
            path = checkpoint_path(detector.get("checkpoint"), "pose.estimator.rtmpose.detector.checkpoint")
            self._detector = YOLOX(str(path), model_input_size=tuple(detector.get("input_size", (640, 640))),
                                   score_thr=float(detector.get("score", 0.5)), backend="onnxruntime",
                                   device=device_name(device))
        self.min_score = min_score

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        rgb = flatten_rgba(image)
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # rtmlib follows OpenCV: BGR
        boxes = [_alpha_box(image)]
        if self._detector is not None:
            found = self._detector(bgr)
            if len(found) == 0:
                return None
            boxes = [max(found.tolist(), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))]  # the largest person
        keypoints, scores = self._pose(bgr, bboxes=boxes)
        if keypoints.shape[1:] != (17, 2):
            raise ValueError(f"The RTMPose model gives {keypoints.shape[1]} keypoints; COCO-17 body needs 17")
        coco = np.concatenate([keypoints[0], scores[0][:, None]], axis=1).astype(np.float32)
        return None if float(np.median(coco[:, 2])) < self.min_score else coco


class MmPose:
    """MMPose top-down model (`init_model` + `inference_topdown`) from a local config and checkpoint."""

    name = "mmpose"

    def __init__(self, config: str | None = None, checkpoint: str | None = None, min_score: float = 0.3,
                 device: str = "auto", config_sha256: str | None = None,
                 checkpoint_sha256: str | None = None):
        if not config or not Path(config).is_file():
            raise FileNotFoundError(f"MMPose config not found: parameter `pose.estimator.mmpose.config` "
                                    f"is '{config}'")
        weights = checkpoint_path(checkpoint, "pose.estimator.mmpose.checkpoint")
        # an MMPose config is Python, executed when read; its checkpoint is a pickle mmengine loads whole
        verified(Path(config), config_sha256, "pose.estimator.mmpose.config_sha256",
                 "is a Python config, which runs when read")
        verified(weights, checkpoint_sha256, "pose.estimator.mmpose.checkpoint_sha256",
                 "is a pickle that mmengine loads without weights_only")
        try:
            from mmpose.apis import inference_topdown, init_model
        except ImportError as err:
            raise ImportError(
                f"The mmpose pose backend needs mmpose and mmcv (with compiled ops), the optional extra "
                f"`[mmpose]`: run `make mmpose` ({err})"
            ) from err
        self._model = init_model(config, str(weights), device=device_name(device))
        self._infer = inference_topdown
        self.min_score = min_score

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        bgr = np.ascontiguousarray(flatten_rgba(image)[..., ::-1])
        results = self._infer(self._model, bgr, np.array([_alpha_box(image)]), bbox_format="xyxy")
        if not results:
            return None
        inst = results[0].pred_instances
        points, scores = np.asarray(inst.keypoints)[0], np.asarray(inst.keypoint_scores)[0]
        if points.shape != (17, 2):
            raise ValueError(f"The MMPose model gives {points.shape[0]} keypoints; COCO-17 body needs 17")
        coco = np.concatenate([points, scores[:, None]], axis=1).astype(np.float32)
        return None if float(np.median(coco[:, 2])) < self.min_score else coco


make_pose_estimator = backend_factory(
    "pose.estimator", {"mediapipe": MediaPipePose, "rtmpose": RtmPose, "mmpose": MmPose}
)
