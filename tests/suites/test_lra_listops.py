"""ListOps generator and loader (``suites.lra.data.listops``) on tiny files."""

from __future__ import annotations

import random

import pytest

from suites.lra.data import listops
from suites.lra.data.__main__ import main as data_main

SMALL = {"max_depth": 4, "max_args": 5, "min_length": 10, "max_length": 60}


def evaluate(tokens: list[str]) -> int:
    """Value of a prefix expression with ``]`` closing operators, by a stack of frames."""
    stack: list[list] = [["ROOT"]]
    for token in tokens:
        if token.startswith("["):
            stack.append([token])
        elif token == "]":
            op, *args = stack.pop()
            sorted_args = sorted(args)
            value = {
                "[MIN": sorted_args[0],
                "[MAX": sorted_args[-1],
                "[MED": (sorted_args[(len(args) - 1) // 2] + sorted_args[len(args) // 2]) // 2,
                "[SM": sum(args) % 10,
            }[op]
            stack[-1].append(value)
        else:
            stack[-1].append(int(token))
    (root, value), = stack
    return value


def depth_and_arity(tokens: list[str]) -> tuple[int, int]:
    """(operator nesting depth, most arguments of one operator) of an expression."""
    depth = max_depth = max_args = 0
    counts: list[int] = []
    for token in tokens:
        if token.startswith("["):
            if counts:
                counts[-1] += 1
            counts.append(0)
            depth += 1
            max_depth = max(max_depth, depth)
        elif token == "]":
            max_args = max(max_args, counts.pop())
            depth -= 1
        elif counts:
            counts[-1] += 1
    return max_depth, max_args


def words(source: str) -> list[str]:
    return [t for t in source.split() if t not in ("(", ")")]


def test_official_text_format_of_a_tree():
    tree = ((((listops.MAX, 2), 9), listops.END))
    assert listops.to_string(tree) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert listops.to_value(tree) == 9


@pytest.mark.parametrize(
    ("source", "value"),
    [("[MED 1 2 ]", 1), ("[MED 3 4 5 6 ]", 4), ("[MED 9 0 5 ]", 5), ("[SM 9 8 ]", 7),
     ("[MIN 3 [MAX 1 0 ] ]", 1), ("[SM [MED 8 9 ] 2 7 ]", 7)],
)
def test_independent_evaluator_semantics(source, value):
    assert evaluate(source.split()) == value


def test_generated_expressions_follow_the_settings_and_evaluate_right():
    examples = listops.generate(300, seed=1, **SMALL)
    assert len({s for s, _ in examples}) == 300
    for source, label in examples:
        tokens = words(source)
        assert SMALL["min_length"] < len(tokens) < SMALL["max_length"]
        depth, arity = depth_and_arity(tokens)
        assert depth <= SMALL["max_depth"] and 2 <= arity <= SMALL["max_args"]
        assert source.count("(") == source.count(")")
        assert label == evaluate(tokens)


def test_a_node_is_a_digit_with_probability_three_quarters_above_max_depth():
    rng = random.Random(0)
    draws = [listops.generate_tree(rng, 1, 10, 10)[1] for _ in range(4000)]
    digits = sum(length == 1 for length in draws) / len(draws)
    assert digits == pytest.approx(1 - listops.VALUE_P, abs=0.03)  # ±4 standard deviations
    assert listops.generate_tree(rng, 5, 5, 10)[1] == 1  # always a digit at the maximum depth


@pytest.mark.parametrize("nesting", ["", "lra_release", "lra_release/lra_release"])
def test_write_and_load_round_trip_in_every_root_layout(tmp_path, nesting):
    listops.write_release(tmp_path / nesting, {"train": 30, "val": 5, "test": 7}, **SMALL)
    header = (tmp_path / nesting / "listops-1000" / "basic_val.tsv").read_text().splitlines()[0]
    assert header == "Source\tTarget"
    data = listops.load(tmp_path)
    assert [len(data[s]) for s in listops.SPLITS] == [30, 5, 7]
    expected = listops.generate(42, seed=0, **SMALL)
    test = data["test"]
    for i, (source, label) in enumerate(expected[35:]):
        ids = test.inputs[i, : test.lengths[i]].tolist()
        assert [listops.VOCAB[t] for t in ids] == words(source)
        assert test.labels[i] == label
        assert (test.inputs[i, test.lengths[i]:] == 0).all()


@pytest.mark.parametrize(
    ("line", "message"),
    [("[MAX 1 2 ]", "expected 2 tab-separated fields"),
     ("[MAX 1 2 ]\t12", "the target must be a digit"),
     ("[MAX 1 2 ]\tx", "the target must be a digit"),
     ("[MAX 1 [FIRST 2 ] ]\t1", "unknown token '[FIRST'"),
     ("( )\t3", "empty expression")],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "basic_train.tsv"
    path.write_text(f"Source\tTarget\n[MIN 3 4 ]\t3\n{line}\n")
    with pytest.raises(ValueError) as info:
        listops.read_split(path)
    assert f"{path}:3: " in str(info.value) and message in str(info.value)


def test_wrong_header_is_reported(tmp_path):
    path = tmp_path / "basic_train.tsv"
    path.write_text("[MIN 3 4 ]\t3\n")
    with pytest.raises(ValueError) as info:
        listops.read_split(path)
    assert f"{path}:1: expected the header" in str(info.value)


def test_missing_files_list_every_path_and_how_to_generate(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        listops.load(tmp_path)
    message = str(info.value)
    for prefix in ("", "lra_release/", "lra_release/lra_release/"):
        for split in listops.SPLITS:
            assert str(tmp_path / f"{prefix}listops-1000/basic_{split}.tsv") in message
    assert f"python -m suites.lra.data listops --root {tmp_path}" in message


def test_data_command_writes_the_release_layout(tmp_path, capsys):
    argv = ["listops", "--root", str(tmp_path), "--train", "4", "--val", "2", "--test", "2",
            "--max-depth", "3", "--min-length", "5", "--max-length", "40"]
    assert data_main(argv) == 0
    assert "basic_train.tsv" in capsys.readouterr().out
    assert len(listops.load(tmp_path)["train"]) == 4


def test_lsb_data_listops_is_the_same_command(tmp_path):
    from suites.cli import main as lsb

    argv = ["data", "listops", "--root", str(tmp_path), "--train", "3", "--val", "1",
            "--test", "1", "--max-depth", "2", "--min-length", "3", "--max-length", "30"]
    assert lsb(argv) == 0
    assert [len(listops.load(tmp_path)[s]) for s in ("train", "val", "test")] == [3, 1, 1]
