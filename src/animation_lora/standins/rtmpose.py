"""A stand-in for the studio pose backend's two ONNX files, in the real on-disk format of RTMPose-m (SimCC
body, 256x192) and rtmlib's YOLOX-m person detector (NMS inside the graph), so the studio path can be
rehearsed offline. Weights are random; a fixed layout (a standing COCO-17 skeleton as SimCC peaks, a person
box over the picture) is added to them so the outputs are poses and people rather than nothing.

What rtmlib 0.0.16 reads (onnxruntime): it feeds the first input whatever its name and takes the outputs
in graph order.
- RTMPose: (1, 3, 256, 192) float32, the box x1.25 widened to 3:4, warped, (BGR - mean) / std with the
  ImageNet RGB mean/std. Out simcc_x (1, 17, 384), simcc_y (1, 17, 512): logits at 2 bins a pixel; a joint
  is at argmax / 2, its score the mean of the two maxima (no softmax); score <= 0 marks it missing.
- YOLOX: (1, 3, 640, 640) float32, BGR 0-255, the picture resized at the top left, the rest 114. Only the
  first output is read, `dets` (1, N, 5) x0, y0, x1, y1, score (`labels` (1, N) is ignored); boxes over a
  fixed 0.3 are kept (`score_thr` only filters (1, 8400, 85) outputs without NMS), divided by the resize
  ratio, not clipped."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

POSE_FILE = "rtmpose-m_simcc-body7_pt-body7_420e-256x192.onnx"
DETECTOR_FILE = "yolox_m_8xb8-300e_humanart.onnx"
POSE_SIZE = (192, 256)  # (width, height), as rtmlib's model_input_size
DETECTOR_SIZE = 640

# A person standing, facing the viewer, in the pose model's input as fractions of its width and height;
# COCO-17 order, "left" is the person's. rtmlib pads the box by 1.25 and widens it to 3:4, so a square box
# fills the middle 60% of the height: kept within that, the joints land inside any box not wider than tall.
SKELETON = (
    (0.50, 0.24), (0.52, 0.22), (0.48, 0.22), (0.55, 0.23), (0.45, 0.23),  # nose, eyes, ears
    (0.60, 0.33), (0.40, 0.33), (0.63, 0.45), (0.37, 0.45), (0.64, 0.55), (0.36, 0.55),  # arms
    (0.56, 0.54), (0.44, 0.54), (0.57, 0.67), (0.43, 0.67), (0.58, 0.79), (0.42, 0.79),  # legs
)


def simcc_peaks(centres: torch.Tensor, bins: int, height: float = 0.8, sigma: float = 6.0) -> torch.Tensor:
    """(17,) centres as fractions -> (17, bins) Gaussian peaks of `height` (the joint's score)."""
    grid = torch.arange(bins, dtype=torch.float32)
    return height * torch.exp(-((grid - centres[:, None] * bins) ** 2) / (2 * sigma**2))


class TinyRtmPose(nn.Module):
    """RTMPose's shape in miniature: conv features down to 17 maps of 8x6 (as RTMPose-m's backbone + head
    give), flattened per joint, one linear layer each to the x and y SimCC logits, plus the skeleton."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 17, 3, stride=2, padding=1))
        self.cls_x, self.cls_y = nn.Linear(48, 2 * POSE_SIZE[0]), nn.Linear(48, 2 * POSE_SIZE[1])
        for layer in (self.cls_x, self.cls_y):  # small next to the peaks: they move joints, not hide them
            layer.weight.data.mul_(0.1)
            layer.bias.data.zero_()
        xy = torch.tensor(SKELETON)
        self.register_buffer("layout_x", simcc_peaks(xy[:, 0], 2 * POSE_SIZE[0]))
        self.register_buffer("layout_y", simcc_peaks(xy[:, 1], 2 * POSE_SIZE[1]))

    def forward(self, image):
        joints = self.features(image).flatten(2)  # (1, 17, 48)
        return self.cls_x(joints) + self.layout_x, self.cls_y(joints) + self.layout_y


class TinyYolox(nn.Module):
    """YOLOX with NMS, in miniature: N = 3 ranked detections, the first a person box over 90% of the
    picture (score 0.92-0.97), then two smaller ones under rtmlib's 0.3 (score 0.08-0.18); random features
    move each box edge by up to 2% and each score a little. A picture that is all 114 grey cannot be told
    from the padding: its box is over the whole input."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.AvgPool2d(32), nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 15))
        # each box's inset from the picture's left, top, right and bottom edge, as fractions of its size
        self.register_buffer("inset", torch.tensor([[0.05, 0.05, 0.05, 0.05], [0.1, 0.1, 0.5, 0.4],
                                                    [0.45, 0.3, 0.1, 0.2]]))
        self.register_buffer("logit", torch.tensor([3.0, -2.0, -2.0]))

    def forward(self, image):
        f = torch.tanh(self.features(image / 255)).view(3, 5)
        # rtmlib puts the picture at the top left and pads the rest with exactly 114: its size is how far the
        # other pixels reach (the whole input when there are none)
        seen = ((image[0] - 114).abs().amax(0) > 0).float()  # (640, 640)
        index = torch.arange(1, DETECTOR_SIZE + 1, dtype=torch.float32)
        h, w = (seen.amax(1) * index).amax(), (seen.amax(0) * index).amax()
        h, w = torch.where(h > 0, h, float(DETECTOR_SIZE)), torch.where(w > 0, w, float(DETECTOR_SIZE))
        inset = self.inset + 0.02 * f[:, :4]
        box = torch.stack([w * inset[:, 0], h * inset[:, 1], w * (1 - inset[:, 2]), h * (1 - inset[:, 3])], 1)
        score = torch.sigmoid(self.logit + 0.5 * f[:, 4])
        dets = torch.cat([box, score[:, None]], 1)[None]
        return dets, torch.zeros(1, 3, dtype=torch.int64)  # labels: COCO class 0, person


def export(model: nn.Module, shape: tuple, path: Path, outputs: list[str]) -> None:
    torch.onnx.export(model.eval(), torch.zeros(shape), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=outputs)


def write(folder: Path, seed: int = 0) -> dict:
    """Write both ONNX files into `folder`; return the parameters pointing the studio config at them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pose, detector = folder / POSE_FILE, folder / DETECTOR_FILE
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        export(TinyRtmPose(), (1, 3, POSE_SIZE[1], POSE_SIZE[0]), pose, ["simcc_x", "simcc_y"])
        export(TinyYolox(), (1, 3, DETECTOR_SIZE, DETECTOR_SIZE), detector, ["dets", "labels"])
    return {"pose": {"estimator": {"backend": "rtmpose", "rtmpose": {
        "checkpoint": str(pose), "input_size": list(POSE_SIZE), "detector": {"checkpoint": str(detector)}}}}}
