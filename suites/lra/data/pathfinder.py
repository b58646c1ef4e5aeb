"""Pathfinder (Linsley et al., 2018) in the LRA release layout: generator and loader.

An image shows two long paths and a few short distractor paths, each a chain of short
dashes ("paddles") whose orientation turns by a bounded random angle from one dash to
the next, so a path is smooth and can only be followed by integrating along it. Two
endpoints are marked with discs; the label is 1 when both marks sit on the two ends of
the same path and 0 when they sit on one end of each long path. Both classes draw the
same paths and marks, only where the second mark goes differs, so shallow cues (how
many pixels are bright, a linear read-out of the pixels) are at chance. The second long
path starts as far from one end of the first as the first path's two ends are from each
other, and a negative image marks that end and that start: the two marks are equally far
apart in both classes. (Otherwise the distance alone would give the label away: the ends
of one smooth path are about a path's length apart, those of two paths anywhere.)

Layout of the release (``pathfinder32/curv_contour_length_14``): ``imgs/<batch>/
sample_<i>.png`` and ``metadata/<batch>.npy``, a text file (despite its suffix) with one
line per image: ``imgs/<batch> sample_<i>.png <i> <label> …``. The LRA input pipeline
reads every metadata file and cuts the images, in order, into 80% training, 10%
validation and 10% test; :func:`load` does the same, taking batches in numeric order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from suites.atomic import atomic_open
from suites.lra.data.release import cache_dir, find_release_dir, missing_files_error
from suites.lra.data.sequences import SequenceData

log = logging.getLogger(__name__)

DIFFICULTY = "curv_contour_length_14"
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLITS = tuple(SPLIT_FRACTIONS)
#: Images are drawn this many times larger, then reduced: anti-aliased thin dashes.
SUPERSAMPLING = 4
#: Redraws of one step's turn, restarts of one path, and starts of the second long path
#: tried around one first path, before giving up.
STEP_TRIES, PATH_TRIES, SECOND_START_TRIES = 20, 2_000, 50
#: Part of every cache file's name: bump it when the drawing changes, so that images
#: cached by an older generator are not taken for the new one's.
GENERATOR_VERSION = 1


def release_dir(resolution: int, difficulty: str = DIFFICULTY) -> str:
    return f"pathfinder{resolution}/{difficulty}"


@dataclass(frozen=True)
class PathfinderSettings:
    """Geometry of a Pathfinder image, in pixels of the final image."""

    resolution: int = 32
    contour_length: int = 14  # dashes of each long path
    distractors: int = 3  # short paths without marks
    distractor_length: int = 5  # dashes of each distractor
    paddle_length: float = 1.3
    paddle_gap: float = 0.7
    max_turn: float = math.pi / 6  # largest change of orientation between two dashes
    line_width: float = 0.6
    marker_radius: float = 1.1
    clearance: float = 1.8  # least distance between dashes of different paths
    margin: float = 1.0  # dashes stay this far inside the border

    def magnified(self, resolution: int) -> PathfinderSettings:
        """The same picture drawn at ``resolution``: every length scales, counts do not."""
        factor = resolution / self.resolution
        lengths = ("paddle_length", "paddle_gap", "line_width", "marker_radius", "clearance",
                   "margin")
        return dataclasses.replace(
            self, resolution=resolution, **{n: getattr(self, n) * factor for n in lengths}
        )


def _sample_path(
    rng: np.random.Generator,
    s: PathfinderSettings,
    dashes: int,
    taken: np.ndarray,
    start: np.ndarray | None = None,
) -> np.ndarray | None:
    """Dash start points ``(dashes + 1, 2)`` of a smooth random walk from ``start``
    (default: a uniform point) that stays inside the margin and ``clearance`` away from
    ``taken`` (points of earlier paths).

    Each step turns by a uniform angle in ±``max_turn``; a step that would leave the
    image or come too close is redrawn (the first of ``STEP_TRIES`` draws that fits is
    taken), and the walk gives up (None) when none fits, so the orientation never jumps.
    """
    step = s.paddle_length + s.paddle_gap
    low, high = s.margin, s.resolution - s.margin

    def free(points: np.ndarray) -> np.ndarray:
        """Which of ``points`` (k, 2) lie inside the margin and clear of ``taken``."""
        ok = ((points >= low) & (points <= high)).all(axis=1)
        if len(taken):
            squared_gaps = ((points[:, None] - taken[None]) ** 2).sum(axis=-1).min(axis=1)
            ok &= squared_gaps >= s.clearance**2
        return ok

    point = rng.uniform(low, high, size=2) if start is None else start
    if not free(point[None])[0]:
        return None
    angle = rng.uniform(0, 2 * np.pi)
    points = [point]
    for _ in range(dashes):
        turned = angle + rng.uniform(-s.max_turn, s.max_turn, size=STEP_TRIES)
        candidates = point + step * np.stack([np.cos(turned), np.sin(turned)], axis=1)
        # Mid-dash too, so two paths cannot cross between their dash ends.
        ok = free(candidates) & free((point + candidates) / 2)
        if not ok.any():
            return None
        first = int(np.argmax(ok))
        angle, point = turned[first], candidates[first]
        points.append(point)
    return np.array(points)


def _place_path(
    rng: np.random.Generator, s: PathfinderSettings, dashes: int, taken: np.ndarray
) -> np.ndarray:
    for _ in range(PATH_TRIES):
        path = _sample_path(rng, s, dashes, taken)
        if path is not None:
            return path
    raise RuntimeError(
        f"could not place a path of {dashes} dashes in a {s.resolution}-pixel image; "
        "use fewer or shorter paths, or a smaller clearance"
    )


def _points(path: np.ndarray) -> np.ndarray:
    """Dash ends and mid-dash points of ``path``: what later paths keep clear of."""
    return np.concatenate([path, (path[:-1] + path[1:]) / 2])


def _long_paths(
    rng: np.random.Generator, s: PathfinderSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first path, second path, the end of the first that the second starts from).

    The second path starts ``span`` away from that end, ``span`` being the distance
    between the first path's two ends: the marks of either class are ``span`` apart.
    """
    for _ in range(PATH_TRIES):
        first = _place_path(rng, s, s.contour_length, np.zeros((0, 2)))
        anchor = first[[0, -1][rng.integers(2)]]
        span = np.linalg.norm(first[-1] - first[0])
        for angle in rng.uniform(0, 2 * np.pi, size=SECOND_START_TRIES):
            start = anchor + span * np.array([np.cos(angle), np.sin(angle)])
            second = _sample_path(rng, s, s.contour_length, _points(first), start)
            if second is not None:
                return first, second, anchor
    raise RuntimeError(
        f"could not place two paths of {s.contour_length} dashes in a {s.resolution}-pixel "
        "image; use shorter paths or a smaller clearance"
    )


def draw_sample(rng: np.random.Generator, s: PathfinderSettings, label: int) -> np.ndarray:
    """One image, uint8 ``(resolution, resolution)``, whose marks are connected iff label."""
    first, second, anchor = _long_paths(rng, s)
    paths = [first, second]
    taken = np.concatenate([_points(first), _points(second)])
    for _ in range(s.distractors):
        path = _place_path(rng, s, s.distractor_length, taken)
        taken = np.concatenate([taken, _points(path)])
        paths.append(path)
    marks = [first[0], first[-1]] if label else [anchor, second[0]]

    k = SUPERSAMPLING
    canvas = Image.new("L", (s.resolution * k, s.resolution * k), 0)
    pen = ImageDraw.Draw(canvas)
    width = max(1, round(s.line_width * k))
    for path in paths:
        for start, stop in zip(path[:-1], path[1:], strict=True):
            direction = (stop - start) / np.linalg.norm(stop - start)
            tip = start + s.paddle_length * direction
            pen.line([tuple(start * k), tuple(tip * k)], fill=255, width=width)
    r = s.marker_radius * k
    for x, y in marks:
        pen.ellipse([x * k - r, y * k - r, x * k + r, y * k + r], fill=255)
    small = canvas.resize((s.resolution, s.resolution), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8)


def generate(
    count: int, settings: PathfinderSettings | None = None, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 ``(count, R, R)``, labels ``(count,)``): exactly balanced labels in a
    random order."""
    s = settings or PathfinderSettings()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 2)
    images = np.zeros((count, s.resolution, s.resolution), np.uint8)
    for i, label in enumerate(labels):
        images[i] = draw_sample(rng, s, int(label))
    return images, labels


def cache_path(count: int, settings: PathfinderSettings, seed: int) -> Path:
    """Where :func:`cached_generate` keeps ``generate(count, settings, seed=seed)``."""
    key = json.dumps([GENERATOR_VERSION, dataclasses.asdict(settings)], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = f"pathfinder{settings.resolution}-{digest}-seed{seed}-n{count}.npz"
    return cache_dir() / "pathfinder" / name


def cached_generate(
    count: int, settings: PathfinderSettings | None = None, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`generate`, drawn once per (settings, seed, count) into :func:`cache_path`
    and read back afterwards.

    Several worker processes may miss the cache at once: each draws the same images and
    replaces the file atomically, so a reader never sees a partial file.
    """
    s = settings or PathfinderSettings()
    path = cache_path(count, s, seed)
    try:
        with np.load(path) as stored:
            images, labels = stored["images"], stored["labels"]
        if images.shape == (count, s.resolution, s.resolution) and labels.shape == (count,):
            return images, labels
        log.warning("%s holds arrays of unexpected shapes; drawing the images again", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        log.warning("%s is unreadable (%s); drawing the images again", path, error)
    log.info("drawing %d Pathfinder images into %s", count, path)
    images, labels = generate(count, s, seed=seed)
    try:
        with atomic_open(path, "wb") as file:
            np.savez_compressed(file, images=images, labels=labels)
    except OSError as error:  # a read-only cache (a sandboxed worker): keep them in memory
        log.info("could not keep the images in %s (%s)", path, error.strerror)
    return images, labels


def as_sequences(images: np.ndarray, labels: np.ndarray) -> SequenceData:
    """Images ``(n, R, R)`` uint8 as pixel sequences ``(n, R², 1)``, row by row (still
    uint8: ``SequenceData.batch`` scales each batch to [0, 1])."""
    inputs = torch.from_numpy(np.ascontiguousarray(images.reshape(len(images), -1, 1)))
    return SequenceData(inputs, None, torch.as_tensor(labels, dtype=torch.int64))


def write_release(
    root: Path,
    count: int,
    settings: PathfinderSettings | None = None,
    *,
    batch_size: int = 1000,
    seed: int = 0,
) -> Path:
    """Write ``count`` images in the release layout under ``root``; returns their directory."""
    s = settings or PathfinderSettings()
    directory = Path(root) / release_dir(s.resolution)
    (directory / "metadata").mkdir(parents=True, exist_ok=True)
    images, labels = generate(count, s, seed=seed)
    for batch, start in enumerate(range(0, count, batch_size)):
        (directory / "imgs" / str(batch)).mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(start, min(start + batch_size, count)):
            name = f"sample_{i - start}.png"
            Image.fromarray(images[i]).save(directory / "imgs" / str(batch) / name)
            lines.append(f"imgs/{batch} {name} {i - start} {labels[i]} {s.contour_length}\n")
        (directory / "metadata" / f"{batch}.npy").write_text("".join(lines))
    return directory


def read_metadata(directory: Path) -> list[tuple[Path, int]]:
    """(image path, label) of every line of every metadata file, batches in numeric order."""
    files = sorted((directory / "metadata").glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    entries = []
    for file in files:
        with open(file) as f:
            for number, line in enumerate(f, start=1):
                fields = line.split()
                if not fields:
                    continue
                where = f"{file}:{number}"
                if len(fields) < 4:
                    raise ValueError(
                        f"{where}: expected 'subdir filename index label …', got {line.strip()!r}"
                    )
                if fields[3] not in ("0", "1"):
                    raise ValueError(f"{where}: the label must be 0 or 1, got {fields[3]!r}")
                image = directory / fields[0] / fields[1]
                if not image.is_file():
                    raise ValueError(f"{where}: image {image} does not exist")
                entries.append((image, int(fields[3])))
    if not entries:
        raise ValueError(f"{directory / 'metadata'}: no images listed")
    return entries


def load(
    root: Path, resolution: int = 32, splits: Sequence[str] = SPLITS
) -> dict[str, SequenceData]:
    """The splits as pixel sequences ``(n, R², 1)`` in [0, 1], row by row.

    Missing files raise one ``FileNotFoundError`` listing every path looked for.
    """
    relative = release_dir(resolution)
    directory = find_release_dir(Path(root), relative, ["metadata"])
    if directory is None:
        raise missing_files_error(Path(root), relative, ["metadata"], generate="pathfinder")
    entries = read_metadata(directory)
    n = len(entries)
    bounds, start = {}, 0
    for split, fraction in SPLIT_FRACTIONS.items():
        stop = n if split == SPLITS[-1] else start + int(fraction * n)
        bounds[split], start = (start, stop), stop
    data = {}
    for split in splits:
        lo, hi = bounds[split]
        pixels = np.stack([_read_image(path, resolution) for path, _ in entries[lo:hi]])
        data[split] = as_sequences(pixels, np.array([y for _, y in entries[lo:hi]]))
    return data


def _read_image(path: Path, resolution: int) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    if pixels.shape != (resolution, resolution):
        raise ValueError(f"{path}: expected {resolution}×{resolution} pixels, got {pixels.shape}")
    return pixels
