"""Argument parsing: counts and sizes are whole numbers of at least 1 (an overlap may be 0); one error line, exit 2."""

from __future__ import annotations

import pytest

from sixfold.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "q", "-k", "0"],
        ["search", "q", "-k", "-3"],
        ["ask", "q", "-k", "0"],
        ["index", "docs", "--chunk-tokens", "0"],
        ["index", "docs", "--batch-size", "-1"],
        ["index", "docs", "--chunk-overlap", "-1"],
        ["complete", "p", "--max-tokens", "0"],
        ["serve", "--port", "0"],
        ["search", "q", "-k", "ten"],
        ["index", "docs", "--ray-actors", "0"],
        ["embed", "--file", "t", "--out", "v.parquet", "--ray-actors", "x"],
    ],
)
def test_counts_below_one_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1


def test_overlap_may_be_zero_and_counts_may_be_one():
    args = build_parser().parse_args(["index", "docs", "--chunk-overlap", "0", "--chunk-tokens", "32", "--batch-size", "1"])
    assert (args.chunk_overlap, args.chunk_tokens, args.batch_size) == (0, 32, 1)
    assert build_parser().parse_args(["search", "q", "-k", "1"]).k == 1
