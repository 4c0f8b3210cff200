"""The film a run starts from: a video file (mp4/mov/mkv/…, decoded with PyAV) or a folder of frames.

On the demo configuration a missing film is rendered once (with its ground truth beside it)."""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np
from kedro.io import AbstractDataset, DatasetError
from PIL import Image, UnidentifiedImageError

from ..imaging import to_rgb_array

log = logging.getLogger(__name__)

LOST = "lost to corrupt data in the video"
DAMAGE_WINDOW = 64  # frames after a damaged packet where a timestamp gap is its loss (threads delay frames)
NOT_WANTED = "not wanted"  # a frame skipped on purpose by `Film.frames(wanted)`, not a broken one
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass
class DecodedFrame:
    index: int  # position in the source (frame number, or file order in a folder)
    timestamp: float
    image: np.ndarray | None  # uint8 RGB, None when unreadable
    name: str = ""  # file name for folders
    problem: str = ""  # why image is None


@dataclass
class Film:
    """A lazily decoded film. `frames()` can be iterated several times; nothing is held in memory."""

    path: Path
    fps: float

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    def frames(self, wanted: Container[int] | None = None) -> Iterator[DecodedFrame]:
        """Every source frame in order. With `wanted` (frame numbers), only those are converted to pixels
        (the others are decoded, as the codec needs, but never turned into an RGB array, and a folder's
        other files are not opened): their `image` is None with the problem "not wanted"."""
        return self._folder_frames(wanted) if self.is_folder else self._video_frames(wanted)

    def expected_frames(self) -> int:
        """How many frames the film has, as its header says (a folder: its files); 0 when unknown."""
        if self.is_folder:
            return sum(1 for p in self.path.iterdir() if not p.name.startswith(".") and p.is_file())
        with _open_video(self.path) as container:
            return _expected_frames(container, container.streams.video[0], self.fps)

    def images(self, wanted: Container[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, RGB image) of the wanted readable frames, decoded one at a time."""
        return ((f.index, f.image) for f in self.frames(wanted) if f.image is not None)

    def _video_frames(self, wanted: Container[int] | None) -> Iterator[DecodedFrame]:
        container = _open_video(self.path)
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame-parallel decoding: the same frames, on every core
            expected = _expected_frames(container, stream, self.fps)
            index, previous, damaged_until, lost = 0, None, -1, []
            try:
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError:  # damaged bytes: this packet is lost, decoding goes on
                        damaged_until = index + DAMAGE_WINDOW
                        continue
                    for frame in frames:
                        # near damage, the frames it took (timestamps around them): rows with the reason
                        gap = _frames_between(previous, frame, self.fps) if index <= damaged_until else 0
                        if gap > 0:
                            lost.append((index, index + gap - 1))
                            for k in range(index, index + gap):
                                yield DecodedFrame(k, k / self.fps, None, problem=LOST)
                            index, damaged_until = index + gap, -1
                        previous = frame
                        t = float(frame.time) if frame.time is not None else index / self.fps
                        if wanted is None or index in wanted:
                            yield DecodedFrame(index, t, frame.to_ndarray(format="rgb24"))
                        else:
                            yield DecodedFrame(index, t, None, problem=NOT_WANTED)
                        index += 1
                problem = (
                    f"truncated video: {index} of {expected} frames decodable" if index < expected - 1 else ""
                )
            except (av.error.FFmpegError, ValueError) as err:  # the container itself cannot go on
                problem = f"corrupt video after frame {index}: {err}"
            if index == 0:
                raise DatasetError(f"'{self.path}' contains no decodable video frame")
            if lost and wanted is None:
                log.warning("'%s': corrupt data; frames %s lost (in the frame log as unreadable), decoding "
                            "went on after them", self.path, ", ".join(f"{a}-{b}" for a, b in lost))
            if problem:  # keep the decodable prefix, say so in the frame log
                log.warning("'%s': %s; keeping the decodable prefix", self.path, problem)
                yield DecodedFrame(index, index / self.fps, None, problem=problem)

    def _folder_frames(self, wanted: Container[int] | None) -> Iterator[DecodedFrame]:
        files = sorted(
            (p for p in self.path.iterdir() if not p.name.startswith(".") and p.is_file()),
            key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)],
        )
        for index, file in enumerate(files):
            t = index / self.fps
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                yield DecodedFrame(
                    index, t, None, file.name, f"not an image file ({file.suffix or 'no suffix'})"
                )
                continue
            if wanted is not None and index not in wanted:
                yield DecodedFrame(index, t, None, file.name, NOT_WANTED)
                continue
            try:
                with Image.open(file) as im:
                    im.load()
                    yield DecodedFrame(index, t, to_rgb_array(im), file.name)
            except Image.DecompressionBombError as err:  # a huge declared size: never decoded
                yield DecodedFrame(index, t, None, file.name, f"decompression bomb: {err}")
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
                yield DecodedFrame(index, t, None, file.name, f"unreadable image: {err}")


class FilmFrames(Mapping):
    """`{frame id: image}` of some frames of a film, decoded when iterated, one at a time, in film order: what
    a node returns for an image-folder dataset to save, so that the frames never sit in memory together."""

    def __init__(self, film: Film, ids: dict[int, str], cache: Path | None = None):
        self._film, self._ids, self._cache = film, dict(sorted(ids.items())), cache

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.values())

    def __getitem__(self, frame_id: str) -> np.ndarray:  # one frame: decodes up to it
        number = next((n for n, i in self._ids.items() if i == frame_id), None)
        if number is None:
            raise KeyError(frame_id)
        return next(image for _, image in self._film.images({number}))

    def items(self) -> _Stream:
        if self._cache is None:
            return _Stream(((self._ids[n], image) for n, image in self._film.images(self._ids)), len(self))
        return _Stream(self._through_cache(), len(self))

    def _through_cache(self) -> Iterator[tuple[str, Any]]:
        """With a cache folder: decode only the frames not in it yet (each written as PNG, then renamed), and
        hand on loaders of the cached files (the image folder links them: no second copy)."""
        from .image_folder import read_png

        files = {n: self._cache / f"{self._ids[n]}.png" for n in self._ids}
        missing = {n for n, f in files.items() if not f.exists()}
        if missing:
            self._cache.mkdir(parents=True, exist_ok=True)
        decoded = self._film.images(missing) if missing else iter(())
        for n, image in decoded:
            partial_file = files[n].with_name(files[n].name + ".partial")
            Image.fromarray(image).save(partial_file, format="PNG", compress_level=4)
            partial_file.replace(files[n])
            yield self._ids[n], partial(read_png, files[n])
        for n in sorted(set(files) - missing):
            yield self._ids[n], partial(read_png, files[n])


class _Stream:
    """An iterable that knows its length (for progress bars) and is read once."""

    def __init__(self, items: Iterator, length: int):
        self._items, self._length = items, length

    def __iter__(self) -> Iterator:
        return self._items

    def __len__(self) -> int:
        return self._length


def _frames_between(before, after, fps: float) -> int:
    """Frames missing between two decoded frames, by their timestamps (0 when either has none)."""
    if before is None or before.time is None or after.time is None:
        return 0
    return max(0, int(round((after.time - before.time) * fps)) - 1)


def _expected_frames(container, stream, fps: float) -> int:
    """Frames the container's header promises (0 when it does not say)."""
    if stream.frames:
        return int(stream.frames)
    if container.duration:
        return int(round(container.duration / av.time_base * fps))
    return 0


def _open_video(path: Path):
    if path.stat().st_size == 0:
        raise DatasetError(f"Film '{path}' is an empty (zero-byte) file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise DatasetError(
            f"Film '{path}' is not a readable video (corrupt, truncated before its index, "
            f"or not a video): {err}"
        ) from err
    if not container.streams.video:
        container.close()
        raise DatasetError(f"Film '{path}' has no video stream")
    return container


def _check_frame_folder(folder: Path) -> None:
    """A folder of frames with no file but sub-folders holding images: say which folders to give instead."""
    if any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir()):
        return
    inner = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir()))
    if inner:
        raise DatasetError(
            f"Film '{folder}' has no frames of its own: its images are in sub-folders "
            f"({', '.join(d.name for d in inner[:3])}{', …' if len(inner) > 3 else ''}). Give one of them as "
            f"`film_path` (a film is one folder of frames, in order), e.g. film_path={inner[0]}")


def film_path_given(value: str | None) -> Path:
    """The `film_path` parameter as a path; empty (`--params film_path=`) is an error saying what to give."""
    if value is None or not str(value).strip():
        raise ValueError("`film_path` is empty: give the film, e.g. `kedro run --params "
                         "film_path=/path/to/film.mp4` (a video file or a folder of frames)")
    return Path(value)


def film_name(path: Path) -> str:
    """A film's plain name, for the folders kept per film: the file's stem, or a frame folder's name."""
    return path.stem if path.suffix else path.name


class FilmDataset(AbstractDataset[None, Film]):
    """Read-only dataset for the input film.

    Args:
        filepath: a video file or a folder of frames (set through the `film_path` global or
            ``kedro run --params film_path=…``).
        fps: frame rate assumed for a folder of frames (videos carry their own).
        demo: the demo configuration: when filepath is `demo.film_path` and missing, the demo film
            is rendered there once, with the other keys as arguments of
            ``animation_lora.demo.render_demo_film`` (preset, seed, …).
    """

    def __init__(
        self,
        filepath: str,
        fps: float = 24.0,
        demo: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._path = film_path_given(filepath)
        self._fps = fps
        self._demo = demo
        self.metadata = metadata

    def load(self) -> Film:
        if not self._path.exists():
            demo = dict(self._demo or {})
            demo_path = demo.pop("film_path", None)
            if demo_path is None or Path(demo_path).resolve() != self._path.resolve():
                raise DatasetError(
                    f"Film not found at '{self._path}' (parameter `film_path`: run "
                    f"`kedro run --params film_path=/path/to/film.mp4` or set it in conf/<env>/globals.yml)"
                )
            from ..demo import render_demo_film  # only the demo needs the renderer

            render_demo_film(self._path.parent, **demo)
        if self._path.is_dir():
            _check_frame_folder(self._path)
            return Film(self._path, float(self._fps))
        with _open_video(self._path) as container:
            rate = container.streams.video[0].average_rate
        return Film(self._path, float(rate) if rate else self._fps)

    def save(self, data: None) -> None:
        raise DatasetError("FilmDataset is read-only: a user's film is never written over")

    def _exists(self) -> bool:
        return self._path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path), "fps": self._fps, "demo": self._demo}
