"""The RTMPose and YOLOX stand-ins: real ONNX interfaces that rtmlib and the studio pose backend load and
get poses and person boxes from, deterministic from the seed."""

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("rtmlib")

from animation_lora.backends.pose import RtmPose  # noqa: E402
from animation_lora.standins import rtmpose  # noqa: E402


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return rtmpose.write(tmp_path_factory.mktemp("rtmpose"))["pose"]["estimator"]["rtmpose"]


def picture(h, w, channels=3):
    """A smooth random-ish picture: noise over a gradient."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 50, h)[:, None, None]
    return np.clip(ramp + rng.normal(0, 20, (h, w, channels)), 0, 255).astype(np.uint8)


def inside(k, x0, y0, x1, y1):
    return bool(((k[:, 0] >= x0) & (k[:, 0] <= x1) & (k[:, 1] >= y0) & (k[:, 1] <= y1)).all())


@pytest.mark.parametrize("h, w", [(180, 120), (150, 150)])  # a character crop: tall, or at most square
def test_the_backend_finds_a_pose_through_the_detector(params, h, w):
    model = RtmPose(checkpoint=params["checkpoint"], input_size=params["input_size"],
                    detector=params["detector"], device="cpu")
    k = model(picture(h, w))
    assert k is not None and k.shape == (17, 3) and k.dtype == np.float32
    assert inside(k, 0, 0, w, h)
    assert np.median(k[:, 2]) >= 0.3
    assert k[0, 1] < k[5, 1] < k[11, 1] < k[15, 1]  # nose above shoulder above hip above ankle: standing


def test_the_backend_finds_a_pose_in_the_alpha_box(params):
    model = RtmPose(checkpoint=params["checkpoint"], input_size=params["input_size"], device="cpu")
    crop = np.zeros((180, 120, 4), np.uint8)
    crop[..., :3] = picture(180, 120)
    crop[30:170, 20:90, 3] = 255  # the character's alpha: box (20, 30)-(90, 170)
    k = model(crop)
    assert k is not None and k.shape == (17, 3) and np.median(k[:, 2]) >= 0.3
    assert inside(k, 20, 30, 90, 170)


def test_yolox_finds_a_person_inside_the_picture(params):
    from rtmlib import YOLOX

    detector = YOLOX(params["detector"]["checkpoint"], backend="onnxruntime", device="cpu")
    boxes = detector(np.ascontiguousarray(picture(480, 640)[..., ::-1]))  # rtmlib takes BGR
    assert len(boxes) >= 1
    x0, y0, x1, y1 = boxes[0]
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert (x1 - x0) * (y1 - y0) > 0.5 * 640 * 480  # most of the picture


def test_the_files_have_the_real_interfaces(params):
    def shapes(values):
        return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    pose, detector = onnx.load(params["checkpoint"]), onnx.load(params["detector"]["checkpoint"])
    for model in (pose, detector):
        onnx.checker.check_model(model, full_check=True)
    assert shapes(pose.graph.input) == {"input": [1, 3, 256, 192]}
    assert shapes(pose.graph.output) == {"simcc_x": [1, 17, 384], "simcc_y": [1, 17, 512]}
    assert shapes(detector.graph.input) == {"input": [1, 3, 640, 640]}
    assert [o.name for o in detector.graph.output] == ["dets", "labels"]  # rtmlib reads the first
    assert shapes(detector.graph.output)["dets"][-1] == 5
    assert params["input_size"] == [192, 256]


def test_the_same_seed_writes_the_same_bytes(params, tmp_path):
    again = rtmpose.write(tmp_path)["pose"]["estimator"]["rtmpose"]
    for old, new in ((params["checkpoint"], again["checkpoint"]),
                     (params["detector"]["checkpoint"], again["detector"]["checkpoint"])):
        assert open(old, "rb").read() == open(new, "rb").read()
