"""Pose backends: the COCO-17 mapping, RTMPose through rtmlib on a tiny ONNX model built here (SimCC output
contract), MMPose through a stand-in `mmpose.apis`, MediaPipe on the tiny demo film's frames."""

import hashlib
import sys
import types

import numpy as np
import pytest

from animation_lora.backends.pose import (
    COCO17,
    MEDIAPIPE_TO_COCO17,
    MmPose,
    RtmPose,
    make_pose_estimator,
    mediapipe_to_coco17,
    pad_to_square,
)
from animation_lora.ids import frame_id
from animation_lora.pose.actions import torso_length


def test_mediapipe_landmarks_map_to_coco17_by_name():
    # MediaPipe Pose's published landmark order (the names of indices 0..32)
    mp_names = ["nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
                "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
                "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
                "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
                "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
                "right_heel", "left_foot_index", "right_foot_index"]
    assert all(mp_names[MEDIAPIPE_TO_COCO17[name]] == name for name in COCO17)
    marks = np.arange(33 * 3, dtype=np.float32).reshape(33, 3)
    coco = mediapipe_to_coco17(marks)
    assert coco.shape == (17, 3) and coco[15, 0] == marks[27, 0]  # left ankle
    with pytest.raises(ValueError, match="33 landmarks"):
        mediapipe_to_coco17(marks[:17])


def test_square_crop_maps_back_to_the_image():
    image = np.zeros((100, 40, 4), np.uint8)
    crop, scale, offset = pad_to_square(image, 0.25, 256)
    assert crop.shape == (256, 256, 3)
    # the image's corner (0, 0) and (40, 100) land inside the crop and map back exactly
    side = 150
    assert scale == pytest.approx(256 / side) and tuple(offset) == (-55, -25)


def tiny_rtmpose(path, x=96, y=128):
    """An ONNX 'RTMPose' that puts every keypoint at (x, y) of its 192x256 input: SimCC outputs
    (1, 17, 2*192) and (1, 17, 2*256) (rtmlib decodes with split ratio 2)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")

    class Net(torch.nn.Module):
        def forward(self, image):
            base = image.mean() * 0.0
            sx, sy = torch.zeros(1, 17, 384), torch.zeros(1, 17, 512)
            sx[..., 2 * x], sy[..., 2 * y] = 1.0, 1.0
            return sx + base, sy + base

    torch.onnx.export(Net(), torch.zeros(1, 3, 256, 192), str(path), dynamo=False,
                      input_names=["input"], output_names=["simcc_x", "simcc_y"])
    return path


def test_rtmpose_runs_a_local_onnx_and_returns_coco17_in_crop_pixels(tmp_path):
    model = RtmPose(checkpoint=str(tiny_rtmpose(tmp_path / "pose.onnx")), device="cpu")
    crop = np.zeros((120, 60, 4), np.uint8)
    crop[20:100, 10:50] = 255  # the character's alpha: box (10, 20)-(50, 100), centre (30, 60)
    k = model(crop)
    assert k.shape == (17, 3) and np.allclose(k[:, :2], (30, 60), atol=1.0) and np.allclose(k[:, 2], 1.0)


def test_rtmpose_without_its_file_names_the_parameter(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`pose.estimator.rtmpose.checkpoint`.*missing.onnx"):
        make_pose_estimator({"backend": "rtmpose", "rtmpose": {"checkpoint": str(tmp_path / "missing.onnx")}})
    pose = tiny_rtmpose(tmp_path / "pose.onnx")
    with pytest.raises(FileNotFoundError, match=r"`pose.estimator.rtmpose.detector.checkpoint`"):
        RtmPose(checkpoint=str(pose), detector={"checkpoint": str(tmp_path / "yolox.onnx")})


EMPTY = hashlib.sha256(b"").hexdigest()  # the stand-in config and checkpoint below are empty files


def test_mmpose_absent_names_the_extra(tmp_path, monkeypatch):
    config, weights = tmp_path / "rtmpose.py", tmp_path / "rtmpose.pth"
    config.write_text(""), weights.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "mmpose", None)
    with pytest.raises(ImportError, match=r"`\[mmpose\]`: run `make mmpose`"):
        MmPose(config=str(config), checkpoint=str(weights), config_sha256=EMPTY, checkpoint_sha256=EMPTY)


def test_mmpose_topdown_result_becomes_coco17(tmp_path, monkeypatch):
    config, weights = tmp_path / "rtmpose.py", tmp_path / "rtmpose.pth"
    config.write_text(""), weights.write_bytes(b"")
    seen = {}

    def inference_topdown(model, image, bboxes, bbox_format):
        seen.update(model=model, shape=image.shape, bboxes=bboxes, fmt=bbox_format)
        points = np.tile(bboxes[0][:2], (1, 17, 1)).astype(np.float32)  # every keypoint at the box corner
        return [types.SimpleNamespace(pred_instances=types.SimpleNamespace(
            keypoints=points, keypoint_scores=np.full((1, 17), 0.9, np.float32)))]

    apis = types.ModuleType("mmpose.apis")
    apis.init_model = lambda cfg, ckpt, device: ("model", cfg, ckpt)
    apis.inference_topdown = inference_topdown
    monkeypatch.setitem(sys.modules, "mmpose", types.ModuleType("mmpose"))
    monkeypatch.setitem(sys.modules, "mmpose.apis", apis)
    crop = np.zeros((50, 30, 4), np.uint8)
    crop[5:45, 8:20, 3] = 255
    k = MmPose(config=str(config), checkpoint=str(weights), device="cpu", config_sha256=EMPTY,
               checkpoint_sha256=EMPTY)(crop)
    assert seen["fmt"] == "xyxy" and seen["shape"] == (50, 30, 3) and seen["model"][0] == "model"
    assert k.shape == (17, 3) and np.allclose(k[:, :2], (8, 5)) and np.allclose(k[:, 2], 0.9)


def test_mediapipe_finds_the_demo_characters_joints(tiny_film, tiny_truth):
    """MediaPipe on ground-truth boxes of the tiny film: found on most characters, and PCK@0.2 (torso) well
    above chance. (PCK@0.1 on the demo film's cartoon figures is ~0.4: docs/metrics.md.)"""
    from animation_lora.datasets import FilmDataset

    frames = {frame_id(f.index): f.image for f in FilmDataset(str(tiny_film)).load().frames()}
    model = make_pose_estimator({"backend": "mediapipe"})
    found = hits = total = 0
    rows = tiny_truth.instances.iloc[::3]
    for _, row in rows.iterrows():
        x0, y0, x1, y1 = row.box
        image = frames[frame_id(int(row.frame))]
        k = model(image[y0:y1, x0:x1])
        true = np.asarray(row.joints, np.float32).reshape(17, 3)
        total += int((true[:, 2] > 0).sum())
        if k is None:
            continue
        found += 1
        dist = np.linalg.norm(k[:, :2] + (x0, y0) - true[:, :2], axis=1)
        hits += int(((dist < 0.2 * torso_length(true[None, :, :2])[0]) & (true[:, 2] > 0)).sum())
    assert found >= 0.7 * len(rows)
    assert hits / total >= 0.4


def test_studio_lists_the_pose_checkpoints_before_work():
    """`--env=studio`: the checkpoints hook finds RTMPose's pose and detector files in the parameters."""
    from pathlib import Path

    import yaml

    from animation_lora.backends.weights import missing_checkpoints

    root = Path(__file__).resolve().parents[2]
    studio = yaml.safe_load((root / "conf/studio/parameters_pose.yml").read_text())["pose"]["estimator"]
    studio["rtmpose"].pop("device")
    missing = dict(missing_checkpoints({"pose.estimator": studio}))
    assert set(missing) == {"pose.estimator.rtmpose.checkpoint", "pose.estimator.rtmpose.detector.checkpoint"}
    assert missing["pose.estimator.rtmpose.checkpoint"].endswith(".onnx")
