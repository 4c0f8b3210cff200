"""The demo's ground truth applies to the demo film only: on any other film it loads None."""

import json
import shutil

from animation_lora.datasets import GroundTruthDataset
from animation_lora.demo.ground_truth import belongs_to, film_fingerprint


def test_fingerprint_is_written_with_the_truth(tiny_film):
    meta = json.loads((tiny_film.parent / "ground_truth" / "meta.json").read_text())
    assert meta["film_sha256"] == film_fingerprint(tiny_film)


def test_truth_loads_for_its_own_film_even_when_moved(tiny_film, tmp_path):
    copy = tmp_path / "renamed.mp4"
    shutil.copy(tiny_film, copy)
    gt = tiny_film.parent / "ground_truth"
    assert GroundTruthDataset(str(gt), film_path=str(copy)).load() is not None


def test_truth_is_none_on_another_film(tiny_film, tmp_path):
    other = tmp_path / "other.mp4"
    other.write_bytes(tiny_film.read_bytes()[:-10] + b"0123456789")  # one byte differs: another film
    gt = tiny_film.parent / "ground_truth"
    assert not belongs_to(gt, other)
    assert GroundTruthDataset(str(gt), film_path=str(other)).load() is None
    frames = tmp_path / "frames"
    frames.mkdir()
    assert GroundTruthDataset(str(gt), film_path=str(frames)).load() is None


def test_missing_truth_is_no_error_on_another_film(tmp_path):
    film = tmp_path / "mine.avi"
    film.write_bytes(b"not the demo")
    missing = tmp_path / "demo_film" / "ground_truth"
    assert GroundTruthDataset(str(missing), film_path=str(film)).load() is None
