"""The input film: videos and frame folders, and every kind of bad input."""

import numpy as np
import pytest
from kedro.io import DatasetError
from PIL import Image

from animation_lora.datasets import FilmDataset


@pytest.fixture
def frames_folder(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    rgb = (np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3)
    Image.fromarray(rgb).save(d / "frame_1.png")
    Image.fromarray(rgb[..., 0]).save(d / "frame_2.png")  # greyscale
    Image.fromarray(rgb).convert("CMYK").save(d / "frame_3.jpg")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(d / "frame_4.png")  # 16-bit
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 255, np.uint8)])).save(d / "frame_5.png")  # RGBA
    (d / "frame_6.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt
    (d / "frame_7.png").write_bytes(b"")  # zero bytes
    (d / "frame_10.png").write_bytes((d / "frame_1.png").read_bytes())  # natural order: after 7
    (d / "notes.txt").write_text("not a frame")
    return d


def test_frames_folder_decodes_every_mode_and_skips_bad_files_with_reasons(frames_folder):
    film = FilmDataset(str(frames_folder), fps=10).load()
    frames = list(film.frames())
    names = [f.name for f in frames]
    assert names[:8] == [f"frame_{i}.{'jpg' if i == 3 else 'png'}" for i in (1, 2, 3, 4, 5, 6, 7, 10)]
    good = {f.name: f.image for f in frames if f.image is not None}
    assert set(good) == {
        "frame_1.png",
        "frame_2.png",
        "frame_3.jpg",
        "frame_4.png",
        "frame_5.png",
        "frame_10.png",
    }
    assert all(im.dtype == np.uint8 and im.shape == (40, 60, 3) for im in good.values())
    assert np.array_equal(good["frame_5.png"], good["frame_1.png"])  # opaque alpha dropped
    assert np.array_equal(good["frame_4.png"][..., 0], good["frame_2.png"][..., 0])  # 16-bit scaled to 8
    problems = {f.name: f.problem for f in frames if f.image is None}
    assert problems["frame_6.png"].startswith("unreadable image")
    assert problems["frame_7.png"].startswith("unreadable image")
    assert problems["notes.txt"].startswith("not an image file")
    assert frames[1].timestamp == pytest.approx(0.1)


def test_missing_film_names_the_path_and_the_parameter(tmp_path):
    with pytest.raises(DatasetError, match=r"Film not found at '.*nope\.mp4'.*film_path"):
        FilmDataset(str(tmp_path / "nope.mp4")).load()


def test_demo_is_rendered_only_at_the_demo_path(tmp_path):
    demo = {"film_path": str(tmp_path / "demo" / "film.mp4"), "preset": "tiny"}
    with pytest.raises(DatasetError, match="film_path"):
        FilmDataset(str(tmp_path / "mine.mp4"), demo=demo).load()
    assert not (tmp_path / "demo").exists()


def test_zero_byte_and_non_video_files_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="zero-byte"):
        FilmDataset(str(empty)).load()
    text = tmp_path / "film.mov"
    text.write_text("this is not a video " * 100)
    with pytest.raises(DatasetError, match="not a readable video"):
        FilmDataset(str(text)).load()


def test_truncated_video_keeps_the_decodable_prefix_with_a_reason(tiny_film, tmp_path):
    import av

    mkv = tmp_path / "film.mkv"  # Matroska: a cut file still has its header, so a prefix decodes
    with av.open(str(tiny_film)) as src, av.open(str(mkv), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    frames = list(FilmDataset(str(cut)).load().frames())
    decoded = [f for f in frames if f.image is not None]
    assert 0 < len(decoded) < 36
    assert frames[-1].image is None and frames[-1].problem.startswith(
        f"truncated video: {len(decoded)} of 36"
    )


def test_corrupt_bytes_mid_video_lose_only_their_frames_which_are_reported(tiny_film, tmp_path):
    import numpy as np

    data = bytearray(tiny_film.read_bytes())
    start = len(data) * 2 // 5  # garbage over a packet in the middle (the index, at the end, is intact)
    data[start:start + 1500] = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    frames = list(FilmDataset(str(damaged)).load().frames())
    clean = list(FilmDataset(str(tiny_film)).load().frames())
    lost = [f.index for f in frames if f.image is None]
    assert len(frames) == len(clean) == 36 and 1 <= len(lost) <= 3  # before: every frame after the damage
    assert all(f.problem == "lost to corrupt data in the video" for f in frames if f.image is None)
    assert [f.index for f in frames] == list(range(36))  # the frames after it keep their place in time
    assert np.array_equal(frames[-1].image, clean[-1].image)


def test_truncated_mp4_without_its_index_is_a_clear_error(tiny_film, tmp_path):
    cut = tmp_path / "cut.mp4"  # the moov index sits at the end of our mp4s
    cut.write_bytes(tiny_film.read_bytes()[: tiny_film.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cut.mp4' is not a readable video"):
        FilmDataset(str(cut)).load()


def test_video_frames_and_timestamps(tiny_film):
    film = FilmDataset(str(tiny_film)).load()
    frames = list(film.frames())
    assert len(frames) == 36 and frames[0].image.shape == (180, 320, 3)
    assert frames[12].timestamp == pytest.approx(1.0)
    with pytest.raises(DatasetError, match="read-only"):
        FilmDataset(str(tiny_film)).save(frames)
    assert tiny_film.exists()
