"""``--ray`` / ``--ray-actors`` / ``embed --out`` without a model or a cluster: what is refused, in one line, before any
work; without Ray installed, ``--ray`` names the extra to install; the driver's checks on what the cluster returns."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from sixfold.cli import build_parser, main
from sixfold.core.errors import SixfoldError
from sixfold.indexer import ray_pipeline
from sixfold.indexer.prepare import Skipped
from sixfold.indexer.ray_pipeline import RAY_MISSING, RayCluster, check_ray_arguments


@pytest.mark.parametrize("address", [None, "auto", "10.0.0.5:6379", "ray://head.example:10001", "[::1]:6379", " auto "])
def test_good_addresses_pass(address):
    check_ray_arguments(address, None)
    check_ray_arguments(address, 2) if address is not None else None


@pytest.mark.parametrize("address", ["", "  ", "head", "head:port", "head:0", "head:70000", "a b:1", ":6379", 5])
def test_a_bad_address_is_one_error(address):
    with pytest.raises(SixfoldError, match="--ray takes 'auto' or a cluster address") as error:
        check_ray_arguments(address, None)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("actors", [0, -1, 1.5, "2", True])
def test_a_bad_number_of_actors_is_one_error(actors):
    with pytest.raises(SixfoldError, match="number of Ray actors"):
        check_ray_arguments("auto", actors)


def test_actors_need_an_address():
    with pytest.raises(SixfoldError, match="--ray-actors needs --ray"):
        check_ray_arguments(None, 2)


def test_the_parser_reads_the_options():
    args = build_parser().parse_args(["index", "docs", "--ray", "auto", "--ray-actors", "3"])
    assert (args.ray, args.ray_actors) == ("auto", 3)
    args = build_parser().parse_args(["embed", "--file", "t.txt", "--out", "v.parquet", "--ray", "h:1"])
    assert (args.file, args.out, args.ray, args.ray_actors) == ("t.txt", "v.parquet", "h:1", None)
    assert build_parser().parse_args(["index", "docs"]).ray is None


def _one_error(capsys, rc: int) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 1 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["embed", "--file", "{texts}", "--ray", "auto"], "--out"),
        (["embed", "hello", "--file", "{texts}", "--out", "{tmp}/v.parquet"], "not TEXT arguments"),
        (["embed", "--out", "{tmp}/v.parquet"], "--file"),
        (["index", "{tmp}", "--index", "{tmp}/idx", "--ray", "head"], "cluster address HOST:PORT"),
    ],
)
def test_misused_options_are_one_error_line(argv, fragment, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n")
    rc = main([a.format(texts=texts, tmp=tmp_path) for a in argv])
    assert fragment in _one_error(capsys, rc)
    assert not (tmp_path / "idx").exists() and not (tmp_path / "v.parquet").exists()


def test_without_ray_installed_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert not ray_pipeline.ray_available()
    with pytest.raises(SixfoldError) as error, RayCluster("auto"):
        pass
    assert str(error.value) == RAY_MISSING and "pip install 'sixfold[ray]'" in RAY_MISSING
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("some text to index")
    rc = main(["index", str(tmp_path / "docs"), "--index", str(tmp_path / "idx"), "--ray", "auto"])
    assert "pip install 'sixfold[ray]'" in _one_error(capsys, rc)
    assert not (tmp_path / "idx").exists()  # refused before the index folder is made


def test_a_file_a_worker_cannot_see_but_the_driver_can_is_one_error(tmp_path):
    here = tmp_path / "a.txt"
    here.write_text("text")
    skipped = Skipped("a.txt", "cannot read: No such file or directory")

    def batch(path: Path) -> dict:
        return {"seq": np.array([0]), "result": np.array([pickle.dumps((skipped, None, ("node-2", str(path))))], dtype=object)}

    with pytest.raises(SixfoldError, match="every node must see the indexed folder at the same path") as error:
        ray_pipeline._file_results(batch(here))
    assert "node-2" in str(error.value) and "\n" not in str(error.value)
    # Gone on the driver too (deleted during the run): skipped, as a local run skips it.
    gone = batch(tmp_path / "b")
    assert ray_pipeline._file_results(gone) == [(skipped, None)]


class _TaskError(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__("ray::MapWorker() (pid=1)\nTraceback (most recent call last):\n  ...")
        self.cause = cause


def test_a_failure_on_the_cluster_reads_as_its_cause():
    assert ray_pipeline._reason(_TaskError(SixfoldError("cannot load embedding model x: gone"))) == (
        "cannot load embedding model x: gone"
    )
    assert ray_pipeline._reason(_TaskError(MemoryError("out of memory\nmore"))) == "MemoryError: out of memory"
    reason = ray_pipeline._reason(RuntimeError("Failed to connect to GCS. Last connection error: Traceback (most recent"))
    assert reason == "RuntimeError: Failed to connect to GCS."


def test_the_actor_plan_uses_gpus_where_there_are_some():
    cluster = RayCluster("auto")
    cluster.resources = lambda: (16.0, 2.0)  # type: ignore[method-assign]
    assert cluster.actor_plan() == (2, {"num_gpus": 1, "num_cpus": 1})
    cluster.resources = lambda: (2.0, 0.0)  # type: ignore[method-assign]
    assert cluster.actor_plan() == (1, {"num_cpus": 1})
    cluster.resources = lambda: (64.0, 0.0)  # type: ignore[method-assign]
    assert cluster.actor_plan() == (ray_pipeline.MAX_DEFAULT_ACTORS, {"num_cpus": 1})
    cluster.actors = 3
    assert cluster.actor_plan()[0] == 3
    cluster.resources = lambda: (2.0, 0.0)  # type: ignore[method-assign]
    cluster.actors = 2  # both CPUs asked for: each actor takes a share, so that a loader task still fits
    count, resources = cluster.actor_plan()
    assert count == 2 and resources["num_cpus"] * 2 + ray_pipeline.LOADER_CPUS <= 2.0


def test_embed_out_reads_non_empty_lines_with_their_numbers(tmp_path):
    from sixfold.indexer.bulk import read_lines

    path = tmp_path / "t.txt"
    path.write_text("first\n\n  second  \n\t\nthird")
    assert read_lines(path) == ([1, 3, 5], ["first", "second", "third"])
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(SixfoldError, match="no non-empty line"):
        read_lines(tmp_path / "empty.txt")
    with pytest.raises(SixfoldError, match="does not exist"):
        read_lines(Path(tmp_path / "missing.txt"))
