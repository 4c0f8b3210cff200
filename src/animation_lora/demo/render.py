"""Render the demo film (H.264 via PyAV) and its ground truth, once, into a folder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .backgrounds import PLATE_WIDTH, paint_location
from .character import paint_character
from .creature import paint_creature
from .ground_truth import film_fingerprint
from .script import CAST, Creature, FilmSpec, make_film_spec
from .skeleton import SPEED, build_skeleton, pose_for

log = logging.getLogger(__name__)

GROUND_Y = 0.93  # feet line, in frame heights
CAMERA_MARGIN = 0.1  # the camera window starts this far into the plate (frame widths)
CREATURE_HEIGHT = 0.55  # a creature's shoulder height, in units of a person's height at the same scale


def with_rocks(plate: np.ndarray, W: int, H: int) -> np.ndarray:
    """The plate with shaded grey rocks standing on the ground line every 0.4 frame widths: scenery that
    never moves, which characters walk past (the `props` films)."""
    import cv2

    out = plate.astype(np.float32)
    for k, x in enumerate(np.arange(0.35, plate.shape[1] / W, 0.4) * W):
        rx, ry = (0.07 + 0.02 * (k % 2)) * H, (0.06 + 0.02 * (k % 3)) * H
        mask = np.zeros(plate.shape[:2], np.uint8)
        cv2.ellipse(mask, (int(x), int(GROUND_Y * H - 0.6 * ry)), (int(rx), int(ry)), 0, 0, 360, 255, -1)
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
        shade = 0.6 + 0.4 * np.clip(dist / max(float(dist.max()), 1.0), 0, 1) ** 0.5
        on = mask > 0
        out[on] = np.array([128, 124, 118], np.float32) * shade[on, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_frame(spec: FilmSpec, shot, k: int, plates: dict[str, np.ndarray]):
    """One frame: (rgb uint8, identity label map uint8, instance records). Later actors hide earlier ones."""
    W, H = spec.width, spec.height
    t = k / spec.fps
    cam = int(round((CAMERA_MARGIN + shot.camera_start + shot.camera_speed * t) * W))
    frame = plates[shot.location][:, cam : cam + W].astype(np.float32)
    labels = np.zeros((H, W), np.uint8)
    records = []
    for actor in shot.actors:
        ch = CAST[actor.character]
        world_x = (
            CAMERA_MARGIN + shot.camera_start + actor.start_x + actor.direction * SPEED[actor.action] * t
        ) * W
        if isinstance(ch, Creature):  # no human joints, no face: both recorded as not visible
            box, rgb, alpha = paint_creature(ch, world_x - cam, GROUND_Y * H,
                                             CREATURE_HEIGHT * actor.scale * H, t, actor.phase, actor.action,
                                             actor.direction, W, H)
            joints, inside = np.zeros((17, 2)), np.zeros(17, bool)
            face, expression = np.zeros(4), "none"
        else:
            pose = pose_for(actor.action, t, actor.phase, actor.direction)
            sk = build_skeleton(pose, world_x - cam, GROUND_Y * H, actor.scale * H)
            box, rgb, alpha = paint_character(ch, sk, actor.expression, actor.direction, W, H)
            joints = sk.coco17()
            inside = (joints[:, 0] >= 0) & (joints[:, 0] < W) & (joints[:, 1] >= 0) & (joints[:, 1] < H)
            h, r = sk.points["head"], sk.head_radius
            face, expression = np.array([h[0] - r, h[1] - 1.05 * r, h[0] + r, h[1] + r]), actor.expression
        x0, y0, x1, y1 = box
        if alpha.size:
            a = alpha[..., None]
            frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - a) + rgb * a
            labels[y0:y1, x0:x1][alpha >= 0.5] = actor.character + 1
        records.append(
            dict(
                character=ch.name,
                action=actor.action,
                expression=expression,
                direction=actor.direction,
                joints=np.column_stack([joints, np.where(inside, 2, 0)]).ravel().round(2).tolist(),
                face_box=np.clip(face, 0, [W, H, W, H]).round(2).tolist(),
                label=actor.character + 1,
            )
        )
    for rec in records:  # boxes of what stays visible after occlusion
        ys, xs = np.nonzero(labels == rec["label"])
        rec["area"] = int(len(xs))
        rec["box"] = (
            [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else [0, 0, 0, 0]
        )
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8), labels, records, cam


def film_plates(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """The clean plate of each location the film shows (with rocks when the spec has props)."""
    W, H = spec.width, spec.height
    plates = {loc: paint_location(loc, W, H, seed) for loc in {s.location for s in spec.shots}}
    if spec.props:
        plates = {loc: with_rocks(plate, W, H) for loc, plate in plates.items()}
    return plates


def render_demo_film(out_dir: str | Path, preset: str = "default", seed: int = 0, **overrides) -> Path:
    """Write `film.mp4` and `ground_truth/` into out_dir and return the film path.

    Refuses to touch an existing film: the demo is rendered once, never over what is there.
    """
    out_dir = Path(out_dir)
    film_path = out_dir / "film.mp4"
    if film_path.exists() or (out_dir / "ground_truth").exists():
        raise FileExistsError(f"Demo film already present in '{out_dir}'; it is never re-rendered over.")
    spec = make_film_spec(preset, seed, **overrides)
    W, H = spec.width, spec.height
    tmp = out_dir.with_name(out_dir.name + ".rendering")
    shutil.rmtree(tmp, ignore_errors=True)  # a render killed half-way leaves only this scratch folder
    (tmp / "ground_truth" / "plates").mkdir(parents=True)
    plates = film_plates(spec, seed)
    assert all(p.shape[1] >= int(PLATE_WIDTH * W) for p in plates.values())
    frames, instances, label_maps = [], [], []
    with av.open(str(tmp / "film.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "14", "preset": "medium"}
        n = 0
        with tqdm(total=spec.n_frames, desc="render demo film", unit="frame") as bar:
            for shot in spec.shots:
                for k in range(shot.n_frames):
                    rgb, labels, records, cam = render_frame(spec, shot, k, plates)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                        container.mux(packet)
                    frames.append(
                        dict(
                            frame=n,
                            timestamp=n / spec.fps,
                            shot=shot.index,
                            location=shot.location,
                            camera_x=cam,
                            first_of_shot=k == 0,
                        )
                    )
                    instances += [dict(frame=n, instance=i, **rec) for i, rec in enumerate(records)]
                    label_maps.append(labels)
                    n += 1
                    bar.update()
        for packet in stream.encode():
            container.mux(packet)
    gt = tmp / "ground_truth"
    pd.DataFrame(frames).to_parquet(gt / "frames.parquet", index=False)
    pd.DataFrame(instances).to_parquet(gt / "instances.parquet", index=False)
    np.savez_compressed(gt / "labels.npz", labels=np.stack(label_maps))
    for loc, plate in plates.items():
        Image.fromarray(plate).save(gt / "plates" / f"{loc}.png")
    meta = dict(
        film_sha256=film_fingerprint(tmp / "film.mp4"),  # the truth applies to this film only
        spec=spec.to_dict(),
        cast=[c.__dict__ for c in CAST],
        camera_margin=CAMERA_MARGIN,
        label_of={c.name: i + 1 for i, c in enumerate(CAST)},
    )
    (gt / "meta.json").write_text(json.dumps(meta, indent=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in tmp.iterdir():
        item.rename(out_dir / item.name)
    tmp.rmdir()
    log.info("Rendered the %s demo film (%d frames, %dx%d) into %s", preset, n, W, H, out_dir)
    return film_path
