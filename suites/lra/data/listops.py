"""ListOps (Nangia & Bowman, 2018) as released in the Long Range Arena: generator and loader.

An expression is a tree of operators over the digits 0–9, written in prefix form with
``]`` closing each operator; the label is its value (10 classes)::

    [MAX 2 9 [MIN 4 7 ] 0 ]   →  9

The generator follows the LRA release's script (``lra_benchmarks/data/listops.py``): a
node is a digit with probability ``VALUE_P`` = 0.25 (always at the maximum depth) and
otherwise an operator with 2 to ``max_args`` children; the length of a tree counts its
digits, operators and closing brackets, and only trees with
``min_length < length < max_length`` are kept; trees are de-duplicated before the split,
so no expression is in two splits. Each operator's children are nested pairs, written
with ``(``/``)`` grouping characters, exactly as the release's TSV files have them
(``( ( ( [MAX 2 ) 9 ) ] )``); the tokenizer drops them.

Operators: ``MIN``, ``MAX``, ``MED`` (the median, rounded down: ``int(np.median(·))``)
and ``SM`` (the sum modulo 10).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from suites.lra.data.release import find_release_dir, missing_files_error
from suites.lra.data.sequences import SequenceData

MIN, MAX, MED, SUM_MOD, END = "[MIN", "[MAX", "[MED", "[SM", "]"
OPERATORS = (MIN, MAX, MED, SUM_MOD)
#: Probability that a node above the maximum depth is a digit rather than an operator.
VALUE_P = 0.25
NUM_CLASSES = 10
#: Token ids: 0 pads, then the digits, the operators and the closing bracket.
PAD = "<pad>"
VOCAB = (PAD, *(str(d) for d in range(10)), *OPERATORS, END)
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
#: Grouping characters of the release's files, not tokens of the expression.
GROUPING = ("(", ")")

RELEASE_DIR = "listops-1000"
SPLITS = ("train", "val", "test")
HEADER = ["Source", "Target"]

#: The release's generator settings, and its split sizes.
RELEASE_SETTINGS = {"max_depth": 10, "max_args": 10, "min_length": 500, "max_length": 2000}
RELEASE_SIZES = {"train": 96_000, "val": 2_000, "test": 2_000}


def split_file(split: str) -> str:
    return f"basic_{split}.tsv"


# --------------------------------------------------------------------------- generator

#: A tree: a digit, or a pair whose left part is an operator or an unfinished tree.
Tree = int | str | tuple


def generate_tree(
    rng: random.Random, depth: int, max_depth: int, max_args: int
) -> tuple[Tree, int]:
    """(tree, length) of a random expression whose root is at ``depth`` (the root: 1)."""
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_P:
        return rng.randrange(10), 1
    length = 2  # the operator and its closing bracket
    children = []
    for _ in range(rng.randint(2, max_args)):
        child, child_length = generate_tree(rng, depth + 1, max_depth, max_args)
        children.append(child)
        length += child_length
    tree: Tree = (rng.choice(OPERATORS), children[0])
    for child in children[1:]:
        tree = (tree, child)
    return (tree, END), length


def to_string(tree: Tree) -> str:
    """The release's text of a tree: every pair in ``( … )``."""
    if isinstance(tree, (int, str)):
        return str(tree)
    return f"( {to_string(tree[0])} {to_string(tree[1])} )"


def to_value(tree: Tree) -> int | str | tuple[str, list[int]]:
    """The value of a tree (an unfinished operator while its arguments are collected)."""
    if not isinstance(tree, tuple):
        return tree
    left, right = to_value(tree[0]), to_value(tree[1])
    if left in OPERATORS:
        return (left, [right])
    if right == END:
        op, args = left
        if op == MIN:
            return min(args)
        if op == MAX:
            return max(args)
        if op == MED:
            return int(np.median(args))
        return sum(args) % 10
    return (left[0], left[1] + [right])


def generate(
    count: int,
    *,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
    seed: int = 0,
) -> list[tuple[str, int]]:
    """``count`` distinct (source text, label) pairs in the order they were drawn."""
    if max_length - min_length < 2:
        raise ValueError(f"no length strictly between {min_length} and {max_length}")
    rng = random.Random(seed)
    seen: set[Tree] = set()
    examples = []
    while len(examples) < count:
        tree, length = generate_tree(rng, 1, max_depth, max_args)
        if min_length < length < max_length and tree not in seen:
            seen.add(tree)
            examples.append((to_string(tree), int(to_value(tree))))
    return examples


def write_split(path: Path, examples: Iterable[tuple[str, int]]) -> None:
    """One split as the release's TSV: a ``Source\\tTarget`` header, then one line each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(examples)


def write_release(
    root: Path, sizes: dict[str, int] | None = None, *, seed: int = 0, **settings: int
) -> dict[str, Path]:
    """Generate ``root/listops-1000/basic_{train,val,test}.tsv``; returns the paths.

    ``sizes`` and ``settings`` default to the release's (96k/2k/2k; depth 10, 10 args,
    lengths 500–2000). One de-duplicated draw is cut into the splits.
    """
    sizes = {**RELEASE_SIZES, **(sizes or {})}
    settings = {**RELEASE_SETTINGS, **settings}
    examples = generate(sum(sizes[s] for s in SPLITS), seed=seed, **settings)
    paths, start = {}, 0
    for split in SPLITS:
        paths[split] = Path(root) / RELEASE_DIR / split_file(split)
        write_split(paths[split], examples[start : start + sizes[split]])
        start += sizes[split]
    return paths


# --------------------------------------------------------------------------- loader


def tokenize(source: str) -> list[int]:
    """Token ids of an expression's text; grouping characters are dropped.

    Raises ``KeyError`` naming the first unknown token.
    """
    return [TOKEN_IDS[token] for token in source.split() if token not in GROUPING]


def from_examples(examples: Sequence[tuple[str, int]]) -> SequenceData:
    """Tokenized (source, label) pairs, as :func:`generate` returns them."""
    sources = [tokenize(source) for source, _ in examples]
    return SequenceData.from_token_lists(sources, [label for _, label in examples])


def read_split(path: Path) -> SequenceData:
    """A release TSV file; a malformed line raises ``ValueError`` with file and line."""
    sequences, labels = [], []
    with open(path, newline="") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("\t")
            where = f"{path}:{number}"
            if number == 1:
                if fields != HEADER:
                    raise ValueError(
                        f"{where}: expected the header 'Source\\tTarget', got {line!r}"
                    )
                continue
            if fields == [""]:
                continue
            if len(fields) != 2:
                raise ValueError(f"{where}: expected 2 tab-separated fields, got {len(fields)}")
            source, target = fields
            if target.strip() not in TOKEN_IDS or not target.strip().isdigit():
                raise ValueError(f"{where}: the target must be a digit 0-9, got {target!r}")
            try:
                sequence = tokenize(source)
            except KeyError as err:
                raise ValueError(
                    f"{where}: unknown token {err.args[0]!r}; expected digits, "
                    f"{', '.join(OPERATORS)}, '{END}' and grouping '(' ')'"
                ) from None
            if not sequence:
                raise ValueError(f"{where}: empty expression")
            sequences.append(sequence)
            labels.append(int(target))
    if not labels:
        raise ValueError(f"{path}: no examples")
    return SequenceData.from_token_lists(sequences, labels)


def load(root: Path, splits: Sequence[str] = SPLITS) -> dict[str, SequenceData]:
    """The release's splits under ``root`` (``lra_release/``, its parent, or nested).

    Missing files raise one ``FileNotFoundError`` listing every path looked for.
    """
    files = [split_file(s) for s in splits]
    directory = find_release_dir(Path(root), RELEASE_DIR, files)
    if directory is None:
        raise missing_files_error(Path(root), RELEASE_DIR, files, generate="listops")
    return {split: read_split(directory / f) for split, f in zip(splits, files, strict=True)}
