"""Loaders of Retrieval, Text and Image (``suites.lra.data``) on tiny fixture files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from suites.lra.data import image, retrieval, text


def write_retrieval(directory, rows):
    directory.mkdir(parents=True, exist_ok=True)
    for split in retrieval.SPLITS:
        lines = ["\t".join(row) for row in rows]
        (directory / f"new_aan_pairs.{split}.tsv").write_text("\n".join(lines) + "\n")


ROWS = [["1.0", "p1", "p2", "Graph parsing", "Héllo"], ["0", "p3", "p4", "ab", "abcdefgh"]]


@pytest.mark.parametrize("nesting", ["", "lra_release"])
def test_retrieval_reads_pairs_as_bytes(tmp_path, nesting):
    write_retrieval(tmp_path / nesting / "tsv_data", ROWS)
    data = retrieval.load(tmp_path, max_length=6)
    test = data["test"]
    assert len(test) == 2 and test.labels.tolist() == [1, 0]
    assert test.first.lengths.tolist() == [6, 2]
    assert test.first.inputs[0].tolist() == [b + 1 for b in b"Graph "]
    # Bytes, not characters: "é" is two bytes in UTF-8, so "Héllo" is six tokens.
    assert test.second.inputs[0].tolist() == [b + 1 for b in "Héllo".encode()]
    assert test.second.lengths.tolist() == [6, 6]


@pytest.mark.parametrize(
    ("row", "message"),
    [(["1", "a", "b", "text"], "expected 5 tab-separated fields"),
     (["yes", "a", "b", "x", "y"], "the label must be 0 or 1"),
     (["2", "a", "b", "x", "y"], "the label must be 0 or 1"),
     (["1", "a", "b", "", "y"], "empty document")],
)
def test_retrieval_malformed_lines_name_file_and_line(tmp_path, row, message):
    write_retrieval(tmp_path / "tsv_data", ROWS + [row])
    with pytest.raises(ValueError) as info:
        retrieval.load(tmp_path, ["eval"])
    assert f"new_aan_pairs.eval.tsv:3: {message}" in str(info.value)


def test_retrieval_missing_files_are_listed(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        retrieval.load(tmp_path)
    for split in retrieval.SPLITS:
        assert str(tmp_path / f"lra_release/tsv_data/new_aan_pairs.{split}.tsv") in str(info.value)


def write_imdb(root):
    reviews = {"neg": {"1_2.txt": b"Dull.", "0_1.txt": b"Bad film!"}, "pos": {"5_9.txt": b"Great"}}
    for split in text.SPLITS:
        for label, files in reviews.items():
            (root / "aclImdb" / split / label).mkdir(parents=True)
            for name, body in files.items():
                (root / "aclImdb" / split / label / name).write_bytes(body)


def test_text_reads_reviews_as_bytes_negatives_first(tmp_path):
    write_imdb(tmp_path)
    train = text.load(tmp_path, max_length=4)["train"]
    assert train.labels.tolist() == [0, 0, 1]
    assert train.inputs.tolist() == [[b + 1 for b in s] for s in (b"Bad ", b"Dull", b"Grea")]
    assert train.lengths.tolist() == [4, 4, 4]


def test_text_missing_directories_are_listed(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        text.load(tmp_path)
    assert str(tmp_path / "aclImdb/test/pos") in str(info.value)


def write_cifar(directory, per_batch=4):
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in image.TRAIN_FILES + image.TEST_FILES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(directory / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
        batches[name] = (data, labels)
    return batches


def test_image_pixel_order_channels_and_split(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    data = image.load(tmp_path)
    assert [len(data[s]) for s in image.SPLITS] == [18, 2, 4]
    first = batches["data_batch_1"][0][0]
    # Sequence position r·32 + c holds pixel (r, c); channels are the R, G, B planes.
    r, c = 5, 7
    expected = [first[k * 1024 + r * 32 + c] / 255.0 for k in range(3)]
    torch.testing.assert_close(data["train"].inputs[0, r * 32 + c], torch.tensor(expected).float())
    assert data["val"].labels.tolist() == batches["data_batch_5"][1][2:]
    grey = image.load(tmp_path, ["test"], grayscale=True)["test"]
    assert grey.inputs.shape == (4, 1024, 1)
    rgb = batches["test_batch"][0][1].reshape(3, 1024)[:, 100] / 255.0
    assert grey.inputs[1, 100, 0].item() == pytest.approx(float(image.GREY_WEIGHTS @ rgb), abs=1e-6)


def test_image_bad_pickle_and_missing_files(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR-10 pickle"):
        image.load(tmp_path, ["test"])
    with pytest.raises(FileNotFoundError) as info:
        image.load(tmp_path / "elsewhere")
    assert "data_batch_5" in str(info.value) and "test_batch" in str(info.value)
    with pytest.raises(ValueError, match="unknown splits"):
        image.load(tmp_path, ["validation"])
