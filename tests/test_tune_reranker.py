"""sixfold tune reranker: a real CrossEncoder trained a few steps from the packaged MiniLM encoder on hard negatives
mined from a real index; the version lands in the registry and search / ask / eval use it by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.engine import Engine
from sixfold.eval.datasets import load_beir_set
from sixfold.eval.retrieval import eval_retrieval, index_retrieval_set, reranker_queries
from sixfold.tuner.data import load_rerank_pairs
from sixfold.tuner.reranker import RerankerTrainConfig, mine_pairs, tune_reranker
from sixfold.tuner.versions import Registry

from conftest import assert_one_error_line
from training_callbacks import Steps, StopAt, Stopped

BEIR = Path(__file__).parent / "fixtures" / "beir_tiny"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    index = tmp_path_factory.mktemp("rerank") / "idx"
    data = load_beir_set(BEIR)
    index_retrieval_set(data, index)
    queries = reranker_queries(data)
    config = RerankerTrainConfig(max_steps=3, batch_size=4, negatives=3)
    result = tune_reranker(index, queries[:6], queries[6:], config=config, activate="yes")
    return index, queries, result


def test_mined_pairs_hold_a_relevant_chunk_and_hard_negatives(tuned):
    index, queries, _ = tuned
    snapshot = Engine.open(index).snapshot()
    from sixfold.indexer.embedding import load_index_embedder

    rows, skipped = mine_pairs(snapshot, load_index_embedder(index), queries[:3], RerankerTrainConfig(negatives=3))
    assert skipped == 0
    for query in queries[:3]:
        mine = [r for r in rows if r[0] == query.query]
        assert sum(r[2] == 1.0 for r in mine) >= 1 and sum(r[2] == 0.0 for r in mine) == 3
        assert not {r[1] for r in mine if r[2] == 1.0} & {r[1] for r in mine if r[2] == 0.0}


def test_version_is_saved_with_before_and_after(tuned):
    index, _, result = tuned
    assert result.version == 1 and result.train_queries == 6 and result.eval_queries == 2
    assert 0.0 <= result.before["nDCG@10"] <= 1.0 and 0.0 <= result.after["nDCG@10"] <= 1.0
    entry = Registry(index).load()["reranker"]
    assert entry["active"] == 1 and entry["versions"]["1"]["eval"]["hybrid nDCG@10"] == result.before["nDCG@10"]
    assert (Path(result.path) / "config.json").is_file()


def test_active_reranker_is_the_default_and_can_be_switched_off(tuned, cli):
    index, queries, _ = tuned
    engine = Engine.open(index)
    hits = engine.search(queries[0].query, 5)
    assert all("rerank" in h.scores and "blend" in h.scores for h in hits)  # RRF of reranker and first-stage order
    assert [h.score for h in hits] == sorted((h.scores["blend"] for h in hits), reverse=True)
    alone = engine.search(queries[0].query, 5, rerank_weight=None)
    assert [h.score for h in alone] == sorted((h.scores["rerank"] for h in alone), reverse=True)
    assert not any("rerank" in h.scores for h in engine.search(queries[0].query, 5, rerank=None))
    code, out, _err = cli("search", queries[0].query, "--index", index, "--json", "--no-rerank")
    assert code == 0 and json.loads(out)["reranked"] is False
    code, out, _err = cli("search", queries[0].query, "--index", index, "--json")
    assert code == 0 and json.loads(out)["reranked"] is True
    report = eval_retrieval(BEIR, ["hybrid", "hybrid+rerank"], index, limit=2)
    assert report["reranker"] == Registry(index).active_path("reranker")
    assert set(report["modes"]) == {"hybrid", "hybrid+rerank"}


def test_pairs_file_errors_name_the_line(tmp_path, cli):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "a", "positive": "b"}\n{"query": "c"}\n')
    with pytest.raises(SixfoldError, match=r"pairs.jsonl line 2"):
        load_rerank_pairs(pairs)
    pairs.write_text('{"query": "a", "positive": "b"}\n{"query": " ", "positive": "x"}\n')
    with pytest.raises(SixfoldError, match=r"pairs.jsonl line 2: empty query"):
        load_rerank_pairs(pairs)
    table = tmp_path / "pairs.csv"
    table.write_text("question,answer\na,b\n")
    with pytest.raises(SixfoldError, match=r"pairs.csv line 1: expected a header"):
        load_rerank_pairs(table)
    table.write_text("query,positive\nwhat is x,x is a letter\nwhat is x,x is also a variable\n")
    assert load_rerank_pairs(table)[0].positives == ("x is a letter", "x is also a variable")
    code, _out, err = cli("tune", "reranker", "--pairs", tmp_path / "missing.jsonl", "--index", tmp_path / "nothing")
    assert_one_error_line(code, err)


def test_interrupted_reranker_training_resumes_and_tune_leaves_no_work_folder(tuned, embedder, tmp_path):
    """Stopped after its step-2 checkpoint, the same run given the same work folder starts at step 3; and the tune run
    of the module fixture removed its checkpoints once the version was saved."""
    from sixfold.tuner.reranker import train_reranker
    from sixfold.tuner.training import latest_checkpoint

    index, _, _ = tuned
    assert not list((Path(index) / "models" / ".work").glob("reranker-*"))

    rows = [(f"question {i}", f"passage {i} about topic {i % 3}", float(i % 2)) for i in range(24)]
    config = RerankerTrainConfig(max_steps=5, batch_size=4, max_length=32, save_steps=2)
    work, out = tmp_path / "work", tmp_path / "reranker"
    with pytest.raises(Stopped):
        train_reranker(rows, embedder.path, out, config, [StopAt(3)], work_dir=work)
    assert (latest_checkpoint(work) or "").endswith("checkpoint-2")
    steps = Steps()
    train_reranker(rows, embedder.path, out, config, [steps], work_dir=work)
    assert steps.seen == [3, 4, 5]
    assert (out / "config.json").is_file() and not work.exists()


def test_the_server_search_reranks_with_the_active_reranker_as_the_cli_does(tuned):
    """/v1/search used to run its own search with no reranker; it goes through Engine.search now."""
    import httpx

    from sixfold.http import create_app

    from live_server import LiveServer

    index, queries, _ = tuned
    query = queries[0].query
    expected = [(h.chunk_id, round(h.score, 6)) for h in Engine.open(index).search(query, 5)]
    with LiveServer(create_app(index, warm=False)) as live:
        found = httpx.post(
            live.url + "/v1/search", json={"query": query, "max_rerank": 5, "return_metadata": True}, timeout=120
        ).json()["data"]
    assert all("rerank" in item["metadata"]["scores"] for item in found)
    assert [(item["document"], round(item["score"], 6)) for item in found] == expected
