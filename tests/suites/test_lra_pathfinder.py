"""Pathfinder generator and loader (``suites.lra.data.pathfinder``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from suites.lra.data import pathfinder
from suites.lra.data.__main__ import main as data_main

SETTINGS = pathfinder.PathfinderSettings()


@pytest.fixture(scope="module")
def sample():
    return pathfinder.generate(400, seed=3)


def test_images_are_balanced_and_reproducible(sample):
    images, labels = sample
    assert images.shape == (400, 32, 32) and images.dtype == np.uint8
    assert labels.sum() == 200 and set(labels.tolist()) == {0, 1}
    first, second = pathfinder.generate(6, seed=3), pathfinder.generate(6, seed=3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert images.max() == 255 and (images > 0).mean() < 0.5


def test_paths_turn_smoothly_stay_inside_and_keep_clear():
    rng = np.random.default_rng(0)
    taken = np.array([[16.0, 16.0]])
    paths = [pathfinder._place_path(rng, SETTINGS, 14, taken) for _ in range(20)]
    step = SETTINGS.paddle_length + SETTINGS.paddle_gap
    for path in paths:
        moves = np.diff(path, axis=0)
        np.testing.assert_allclose(np.linalg.norm(moves, axis=1), step)
        angles = np.arctan2(moves[:, 1], moves[:, 0])
        turns = np.angle(np.exp(1j * np.diff(angles)))
        assert np.abs(turns).max() <= SETTINGS.max_turn + 1e-9
        assert path.min() >= SETTINGS.margin and path.max() <= 32 - SETTINGS.margin
        assert np.linalg.norm(path - taken, axis=1).min() >= SETTINGS.clearance


def test_marks_are_equally_far_apart_in_both_classes():
    """The second long path starts as far from an end of the first as the first's ends
    are apart: a negative's marks (that end, that start) are as far apart as a positive's."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        first, second, anchor = pathfinder._long_paths(rng, SETTINGS)
        span = np.linalg.norm(first[-1] - first[0])
        assert any(np.array_equal(anchor, end) for end in (first[0], first[-1]))
        assert np.linalg.norm(second[0] - anchor) == pytest.approx(span, rel=1e-12)
        assert len(first) == len(second) == SETTINGS.contour_length + 1


def test_magnified_settings_scale_lengths_not_counts():
    big = SETTINGS.magnified(128)
    assert big.resolution == 128 and big.paddle_length == pytest.approx(4 * 1.3)
    assert big.clearance == pytest.approx(4 * SETTINGS.clearance)
    assert (big.contour_length, big.distractors, big.max_turn) == (
        SETTINGS.contour_length, SETTINGS.distractors, SETTINGS.max_turn)


def test_shallow_cues_are_at_chance(sample):
    images, labels = sample
    bright = (images > 128).sum(axis=(1, 2)).reshape(-1, 1).astype(float)
    by_count = cross_val_score(LogisticRegression(), bright, labels, cv=5).mean()
    pixels = images.reshape(len(images), -1) / 255.0
    by_pixels = cross_val_score(LogisticRegression(C=0.1, max_iter=500), pixels, labels,
                                cv=5).mean()
    # 400 images: one standard deviation of a chance accuracy is 0.025.
    assert abs(by_count - 0.5) < 0.08
    assert abs(by_pixels - 0.5) < 0.08


@pytest.mark.parametrize("nesting", ["lra_release", "lra_release/lra_release"])
def test_write_and_load_round_trip_in_both_release_roots(tmp_path, nesting):
    directory = pathfinder.write_release(tmp_path / nesting, 20, batch_size=8, seed=1)
    assert directory == tmp_path / nesting / "pathfinder32" / "curv_contour_length_14"
    assert (directory / "imgs" / "2" / "sample_3.png").is_file()
    first_line = (directory / "metadata" / "0.npy").read_text().splitlines()[0].split()
    assert first_line[:3] == ["imgs/0", "sample_0.png", "0"] and first_line[3] in ("0", "1")
    data = pathfinder.load(tmp_path)
    assert [len(data[s]) for s in pathfinder.SPLITS] == [16, 2, 2]
    images, labels = pathfinder.generate(20, seed=1)
    test = data["test"]
    assert test.inputs.shape == (2, 1024, 1) and test.lengths is None
    assert test.inputs.dtype == torch.uint8  # a quarter of float32's memory
    pixels = test.batch(torch.arange(2))[0]
    np.testing.assert_allclose(pixels.numpy().reshape(2, 32, 32), images[18:] / 255.0,
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(data["train"].labels.numpy(), labels[:16])


def test_batches_are_read_in_numeric_order(tmp_path):
    directory = pathfinder.write_release(tmp_path, 12, batch_size=1, seed=2)
    entries = pathfinder.read_metadata(directory)
    assert [p.parent.name for p, _ in entries] == [str(i) for i in range(12)]


@pytest.mark.parametrize(
    ("line", "message"),
    [("imgs/0 sample_0.png 0", "expected 'subdir filename index label"),
     ("imgs/0 sample_0.png 0 2", "the label must be 0 or 1"),
     ("imgs/0 sample_9.png 9 1", "does not exist")],
)
def test_malformed_metadata_names_file_and_line(tmp_path, line, message):
    directory = pathfinder.write_release(tmp_path, 2, batch_size=2, seed=0)
    metadata = directory / "metadata" / "0.npy"
    metadata.write_text(metadata.read_text() + line + "\n")
    with pytest.raises(ValueError) as info:
        pathfinder.load(tmp_path)
    assert f"{metadata}:3: " in str(info.value) and message in str(info.value)


def test_missing_release_lists_paths_and_how_to_generate(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        pathfinder.load(tmp_path)
    message = str(info.value)
    for prefix in ("", "lra_release/", "lra_release/lra_release/"):
        assert str(tmp_path / f"{prefix}pathfinder32/curv_contour_length_14/metadata") in message
    assert f"python -m suites.lra.data pathfinder --root {tmp_path}" in message


def test_data_command_writes_pathfinder(tmp_path, capsys):
    assert data_main(["pathfinder", "--root", str(tmp_path), "--count", "10"]) == 0
    assert "10 images" in capsys.readouterr().out
    assert len(pathfinder.load(tmp_path)["train"]) == 8


def test_data_command_magnifies_the_picture_for_path_x(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(pathfinder, "write_release",
                        lambda root, count, settings, seed: drawn.append(settings) or root)
    assert data_main(["pathfinder", "--root", str(tmp_path), "--count", "2",
                      "--resolution", "128"]) == 0
    (settings,) = drawn
    assert settings == pathfinder.PathfinderSettings().magnified(128)
    assert settings.contour_length == pathfinder.PathfinderSettings().contour_length
