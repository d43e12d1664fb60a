"""``sixfold index --ray`` and ``sixfold embed --ray`` on a real Ray cluster: a head and a worker node started with the
``ray`` CLI (one CPU each, in a temporary folder of their own), the real MiniLM model in the actors, real FAISS /
tantivy / DuckDB on the driver. Each index built through Ray is compared with a local build of the same folder, row
for row; an embedder actor is SIGKILLed mid-run. Skipped only where Ray is not installed (``pip install 'sixfold[ray]'``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install 'sixfold[ray]' (make install installs it)")

from test_workers import PROSE, _assert_same_index, _contents, _hostile_folder  # noqa: E402

from sixfold import Engine  # noqa: E402
from sixfold.indexer import pipeline  # noqa: E402
from sixfold.indexer.store import IndexStore  # noqa: E402

from conftest import MODEL, assert_one_error_line, copy_corpus, run_cli  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
# A head started by `ray start` turns token authentication on by default (Ray >= 2.5x) and a node joining it on the
# same machine does not find the token: the test cluster runs without it, on localhost only.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Ports Ray would otherwise take at fixed defaults (two nodes on one machine, and maybe another cluster)."""
    return [
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--node-manager-port={_free_port()}",
        f"--object-manager-port={_free_port()}",
        "--object-store-memory=100000000",
        "--num-cpus=1",
        "--disable-usage-stats",
    ]


class Cluster:
    """A head and a worker node, each a ``ray start --block`` process: terminating it stops that node's processes."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        os.environ.update(RAY_ENV)  # the drivers (this process, the CLI subprocesses) connect with the same setting

    def start(self) -> None:
        head = [
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.base}",
            "--include-dashboard=false",
            f"--dashboard-port={_free_port()}",
            "--node-ip-address=127.0.0.1",
        ]
        self._node(head + _node_ports(), "head")
        self._wait(lambda: self._reachable(), "the head")
        self._node([f"--address={self.address}", "--node-ip-address=127.0.0.1", *_node_ports()], "worker")
        self._wait(lambda: self.alive_nodes() == 2, "the worker node")

    def _node(self, args: list[str], name: str) -> None:
        log = open(self.base / f"{name}.log", "w")
        env = dict(os.environ, **RAY_ENV)
        self.nodes.append(
            subprocess.Popen(
                [RAY, "start", "--block", *args], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        )

    def _reachable(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def alive_nodes(self) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _COUNT_NODES, self.address], capture_output=True, text=True, timeout=60, env=os.environ
        )
        return int(out.stdout.strip() or 0)

    def _wait(self, ready, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(node.poll() is not None for node in self.nodes):
                logs = "\n".join(p.read_text()[-2000:] for p in self.base.glob("*.log"))
                raise RuntimeError(f"a ray node exited while starting {what}:\n{logs}")
            if ready():
                return
            time.sleep(1)
        raise RuntimeError(f"{what} did not start within {timeout} s")

    def processes(self) -> list[int]:
        """Pids of this cluster's processes (the nodes' descendants)."""
        import psutil

        found = []
        for node in self.nodes:
            try:
                found += [child.pid for child in psutil.Process(node.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return found

    def actor_pids(self, name: str = "_EmbedFiles") -> list[int]:
        import psutil

        pids = []
        for pid in self.processes():
            try:
                title = " ".join(psutil.Process(pid).cmdline())
            except psutil.Error:
                continue
            if title.startswith("ray::") and name in title:
                pids.append(pid)
        return pids

    def stop(self) -> None:
        leftovers = self.processes()
        for node in self.nodes:
            node.terminate()
        deadline = time.monotonic() + 3  # then SIGKILL: nothing of a test cluster needs a graceful end
        for node in self.nodes:
            try:
                node.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(10)
        for pid in leftovers:  # a worker process its raylet did not take down (ours: descendants of our nodes)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_COUNT_NODES = """
import logging, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""


@pytest.fixture(scope="module")
def cluster():
    base = Path(tempfile.mkdtemp(prefix="sfray", dir="/tmp"))  # short: Ray's unix socket paths must fit 107 bytes
    running = Cluster(base)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory, embedder) -> dict[str, Path]:
    """examples/corpus (a copy at a fixed path: an index records its folder) and its local index, the reference; the
    tests below add its index built on the cluster, then change the folder and update both: steps of one scenario."""
    base = tmp_path_factory.mktemp("ray-builds")
    corpus = copy_corpus(base / "corpus")
    Engine.open(base / "local", model=MODEL).index(corpus)
    return {"corpus": corpus, "local": base / "local", "ray": base / "ray"}


def test_an_index_built_on_the_cluster_is_the_local_one(cluster, builds, cli):
    rc, out, err = cli("index", builds["corpus"], "--index", builds["ray"], "--model", MODEL, "--ray", cluster.address, "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert (report["added"], report["skipped"]) == (6, []) and report["chunks_added"] > 20
    assert not [line for line in err.splitlines() if line.strip()], err  # Ray's own log lines stay off the terminal
    ray_index, local_index = _contents(builds["ray"]), _contents(builds["local"])
    assert len(ray_index["chunks"]) == report["chunks_added"]
    _assert_same_index(ray_index, local_index)  # chunk ids, DuckDB rows and vectors, FAISS vectors, BM25 hits


def _change(folder: Path) -> None:
    """A changed file, a new one, a deleted one and a renamed one."""
    (folder / "science" / "steam_engine.txt").write_text(PROSE * 30)
    (folder / "notes.md").write_text("# Notes\n\n" + PROSE * 10)
    (folder / "history" / "black_death.pdf").unlink()
    (folder / "science" / "oxygen.html").rename(folder / "science" / "o2.html")


def test_an_incremental_run_on_the_cluster_is_the_local_one(cluster, builds, cli):
    if not (builds["ray"] / "sixfold-index.json").exists():
        pytest.skip("needs the index the previous test builds on the cluster")
    _change(builds["corpus"])
    reports = {}
    for name, extra in (("local", []), ("ray", ["--ray", cluster.address, "--ray-actors", "1"])):
        rc, out, err = cli("index", builds["corpus"], "--index", builds[name], *extra, "--json")
        assert rc == 0, err
        reports[name] = json.loads(out)
    keys = ("added", "updated", "removed", "renamed", "unchanged", "chunks_added", "chunks_removed", "skipped")
    assert [reports["ray"][k] for k in keys] == [reports["local"][k] for k in keys]
    assert [reports["ray"][k] for k in keys[:5]] == [1, 1, 1, 1, 3]
    _assert_same_index(_contents(builds["ray"]), _contents(builds["local"]))
    rc, out, err = cli("index", builds["corpus"], "--index", builds["ray"], "--ray", cluster.address, "--json")
    assert rc == 0 and json.loads(out)["unchanged"] == 6 and json.loads(out)["generation"] is None, err  # nothing to do


def test_skipped_files_are_reported_as_a_local_run_reports_them(cluster, tmp_path, cli):
    folder = _hostile_folder(tmp_path)
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", cluster.address])):
        index = tmp_path / name
        rc, out, err = cli("index", folder, "--index", index, "--model", MODEL, "--max-file-mb", "1", *extra, "--json")
        assert rc == 0 and "Traceback" not in err, err
        runs[name] = (json.loads(out), [line for line in err.splitlines() if line.strip()])
    (local, local_err), (ray, ray_err) = runs["local"], runs["ray"]
    assert ray["skipped"] == local["skipped"] and len(local["skipped"]) >= 6
    assert ray_err == local_err and all(line.startswith("warning: skipped ") for line in ray_err)
    _assert_same_index(_contents(tmp_path / "ray"), _contents(tmp_path / "local"))


def test_an_embedder_actor_killed_mid_run_is_retried_or_the_run_fails_cleanly(cluster, tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(80):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i}. " + PROSE * 4)
    index = tmp_path / "index"
    command = [sys.executable, "-m", "sixfold", "index", str(folder), "--index", str(index), "--model", MODEL]
    env = dict(os.environ, HF_HUB_OFFLINE="1", SIXFOLD_COMMIT_EVERY="24", SIXFOLD_RAY_STALL_S="60")
    run = subprocess.Popen(
        [*command, "--ray", cluster.address, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        pids = cluster.actor_pids()
        if pids and (index / "sixfold-index.json").exists():  # the actor is embedding: a first commit is on disk
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.2)
    out, err = run.communicate(timeout=240)
    assert killed is not None, f"no actor to kill (rc {run.returncode}): {err.decode()[-2000:]}"
    fresh = IndexStore(tmp_path / "fresh")
    pipeline.index_folder(fresh, folder, embedder, pipeline.IndexSettings(model=embedder.name, dim=embedder.dim), workers=1)
    # 80 near-identical notes tie in BM25, and which tied chunks make a top 10 follows the segments each run's commits
    # made: every hit is compared, so the sorted lists are the whole BM25 contents
    every = 10_000  # more hits than the 80 notes have chunks
    built = _contents(tmp_path / "fresh", bm25_k=every)
    if run.returncode == 0:  # Ray restarted the actor and retried its batch: the index is whole and right
        assert json.loads(out)["added"] == 80
        got = _contents(index, bm25_k=every)
        assert got["chunks"] == built["chunks"] and got["files"] == built["files"]
        np.testing.assert_allclose(got["faiss"], built["faiss"], atol=1e-6)
        assert {q: sorted(hits) for q, hits in got["bm25"].items()} == {q: sorted(hits) for q, hits in built["bm25"].items()}
        return
    # Else one error line, the last commit intact, and the next run finishes it.
    assert_one_error_line(run.returncode, err.decode(), "ray")
    engine = Engine.open(index)
    status = engine.status()
    engine.close()
    assert 0 < status.documents < 80 and not status.health
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["added"] == 80 - status.documents, rerun.stderr
    resumed = _contents(index)
    assert sorted(r[2:] for r in resumed["chunks"]) == sorted(r[2:] for r in built["chunks"])


def test_embed_out_on_the_cluster_is_the_local_embedding(cluster, tmp_path, cli):
    import pyarrow.parquet as pq

    texts = tmp_path / "texts.txt"
    lines = [f"The heron counted boat number {i} by the old mill." for i in range(700)]
    texts.write_text("\n".join(lines[:350]) + "\n\n   \n" + "\n".join(lines[350:]) + "\n")
    for name, extra in (("local", []), ("ray", ["--ray", cluster.address])):
        rc, out, err = cli("embed", "--file", texts, "--out", tmp_path / f"{name}.parquet", "--model", MODEL, *extra, "--json")
        assert rc == 0, err
        assert json.loads(out)["texts"] == 700 and json.loads(out)["ray"] == bool(extra)
    local, ray = (pq.read_table(tmp_path / f"{name}.parquet") for name in ("local", "ray"))
    assert local.column_names == ["line", "text", "vector"] and local.num_rows == ray.num_rows == 700
    assert local["text"].to_pylist() == ray["text"].to_pylist() == lines
    assert local["line"].to_pylist() == ray["line"].to_pylist() == list(range(1, 351)) + list(range(353, 703))
    a, b = (np.stack(t["vector"].to_numpy(zero_copy_only=False)) for t in (local, ray))
    assert a.dtype == np.float32 and a.shape == (700, 384)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary files were renamed or removed


def test_an_address_nobody_answers_at_is_one_error_line_and_the_index_untouched(tmp_path, corpus_copy):
    result = run_cli("index", corpus_copy, "--index", tmp_path / "index", "--ray", f"127.0.0.1:{_free_port()}", timeout=120)
    assert_one_error_line(result.returncode, result.stderr, "cannot reach the Ray cluster")
    assert result.returncode == 1 and not (tmp_path / "index").exists()
