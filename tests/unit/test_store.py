"""The index store's transactions on disk (DuckDB + FAISS + tantivy), with random vectors instead of a model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sixfold.core.errors import SixfoldError
from sixfold.indexer.store import IndexStore, Snapshot

from .helpers import DIM, FILES, ROOT, add, settings, unit_vectors


def pointer(store: IndexStore) -> dict:
    return json.loads(store.pointer_path.read_text())


def test_commit_writes_a_generation_and_points_at_it(small_index):
    store = small_index.store
    assert [p.name for p in store.generations()] == ["gen-000001"]
    assert pointer(store) == {"format": 1, "generation": "gen-000001", "model": "random-vectors", "dim": DIM}
    assert not list(store.root.glob("*.tmp")), "a committed write leaves no temporary folder"
    snapshot = store.open()
    try:
        assert snapshot.count_files() == 4 and snapshot.count_chunks() == 6
        assert [f["path"] for f in snapshot.files()] == sorted(FILES)
        assert snapshot.settings.dim == DIM and snapshot.settings.model == "random-vectors"
        assert snapshot.vectors.ntotal == 6 and snapshot.lexical.count() == 6
    finally:
        snapshot.close()


def test_snapshot_reads_back_text_metadata_and_exact_vectors(small_index):
    snapshot = small_index.store.open()
    try:
        rows = snapshot.chunks([0, 1, 4])
        assert rows[0]["text"] == FILES["notes/steam.md"][0]
        assert (rows[1]["path"], rows[1]["ext"], rows[1]["chunk_index"], rows[1]["root"]) == ("notes/steam.md", "md", 1, ROOT)
        assert rows[4]["path"] == "papers/amazon.pdf"
        assert (rows[1]["start_char"], rows[1]["end_char"]) == (len(FILES["notes/steam.md"][0]) + 2, rows[1]["end_char"])
        ids, vectors = snapshot.embeddings([4, 5])
        assert ids.tolist() == [4, 5]
        np.testing.assert_array_equal(vectors, small_index.vectors["papers/amazon.pdf"])
        assert snapshot.chunks([]) == {}
    finally:
        snapshot.close()


def test_lexical_search_over_committed_text_is_stemmed(small_index):
    snapshot = small_index.store.open()
    try:
        hits = snapshot.lexical.search("engines pistons", 5)  # english stemmer: engines -> engin, pistons -> piston
        assert [cid for cid, _ in hits] == [0]
        assert snapshot.lexical.search("rainforest", 5)[0][0] == 4
        assert snapshot.lexical.search("rainforest", 5, allowed=[0, 1, 2]) == []  # restricted to other chunks
        assert snapshot.lexical.search('"AND" (:', 5) == []  # query syntax only: nothing to search for
    finally:
        snapshot.close()


def test_abort_leaves_the_committed_generation_untouched(small_index):
    store = small_index.store
    before = pointer(store)
    txn = store.begin()
    add(txn, "new.txt", ["a brand new file about volcanoes"], seed=9)
    txn.remove_file(ROOT, "notes/steam.md")
    txn.abort()
    assert pointer(store) == before
    assert [p.name for p in store.generations()] == ["gen-000001"]
    assert not list(store.root.glob("gen-*.tmp"))
    snapshot = store.open()
    try:
        assert snapshot.count_chunks() == 6
        assert snapshot.lexical.search("volcanoes", 5) == []
    finally:
        snapshot.close()


def test_an_error_inside_a_write_aborts_it(small_index):
    store = small_index.store
    txn = store.begin()
    with pytest.raises(SixfoldError, match="embedding shape"):
        add(txn, "bad.txt", ["one chunk"], vectors=unit_vectors(2, 0))  # two vectors for one chunk
    txn.abort()
    assert pointer(store)["generation"] == "gen-000001"
    store.begin().abort()  # the lock was released


def test_generations_advance_and_old_ones_are_pruned(small_index):
    store = small_index.store
    for n in (2, 3):
        txn = store.begin()
        add(txn, f"more-{n}.txt", [f"text number {n}"], seed=n)
        assert txn.commit() == f"gen-{n:06d}"
    # The new generation and the one it was made from (a reader may still hold it) stay.
    assert [p.name for p in store.generations()] == ["gen-000002", "gen-000003"]
    assert pointer(store)["generation"] == "gen-000003"


def test_a_reader_keeps_its_generation_while_a_writer_commits(small_index):
    store = small_index.store
    reader = store.open()
    try:
        txn = store.begin()
        txn.remove_file(ROOT, "notes/normans.txt")
        txn.commit()
        assert reader.count_files() == 4 and reader.lexical.search("Normans", 5)[0][0] == 2
        fresh = store.open()
        try:
            assert fresh.count_files() == 3 and fresh.lexical.search("Normans", 5) == []
        finally:
            fresh.close()
    finally:
        reader.close()


def test_remove_file_drops_rows_vectors_and_words(small_index):
    store = small_index.store
    txn = store.begin()
    assert txn.file_records()[(ROOT, "notes/steam.md")] == ("sha-notes/steam.md", 2)
    assert txn.remove_file(ROOT, "notes/steam.md") == 2
    assert txn.remove_file(ROOT, "not/indexed.txt") == 0
    txn.commit()
    snapshot = store.open()
    try:
        assert "notes/steam.md" not in [f["path"] for f in snapshot.files()]
        assert snapshot.count_chunks() == 4 and snapshot.vectors.ntotal == 4
        assert snapshot.chunks([0, 1]) == {}
        assert snapshot.lexical.search("steam", 5) == []
        assert sorted(snapshot.embeddings()[0].tolist()) == [2, 3, 4, 5]
    finally:
        snapshot.close()


def test_rename_file_moves_rows_and_keeps_vectors(small_index):
    store = small_index.store
    txn = store.begin()
    txn.rename_file(ROOT, "notes/normans.txt", "history/Normans.MD")
    txn.commit()
    snapshot = store.open()
    try:
        row = snapshot.chunks([2])[2]
        assert (row["path"], row["ext"]) == ("history/Normans.MD", "md")
        assert [f["path"] for f in snapshot.files()].count("history/Normans.MD") == 1
        np.testing.assert_array_equal(snapshot.embeddings([2])[1], small_index.vectors["notes/normans.txt"])
        assert sorted(snapshot.filter_ids("ext = 'md'").tolist()) == [0, 1, 2]
    finally:
        snapshot.close()


def test_ids_are_not_reused_after_a_removal(small_index):
    store = small_index.store
    txn = store.begin()
    txn.remove_file(ROOT, "papers/amazon.pdf")  # ids 4 and 5
    add(txn, "again.txt", ["another text"], seed=7)
    txn.commit()
    snapshot = store.open()
    try:
        assert snapshot.embeddings()[0].tolist() == [0, 1, 2, 3, 6]
    finally:
        snapshot.close()


def test_one_writer_at_a_time(small_index):
    first = small_index.store.begin()
    try:
        with pytest.raises(SixfoldError, match="another sixfold process is writing"):
            IndexStore(small_index.store.root).begin()
    finally:
        first.abort()
    IndexStore(small_index.store.root).begin().abort()  # free again


def test_a_stale_tmp_generation_from_a_killed_run_is_removed(small_index):
    store = small_index.store
    stale = store.root / "gen-000002.tmp"
    stale.mkdir()
    (stale / "chunks.duckdb").write_bytes(b"half written")
    txn = store.begin()
    add(txn, "x.txt", ["x marks the spot"], seed=3)
    assert txn.commit() == "gen-000002"
    assert not stale.exists()


@pytest.mark.parametrize("damage", ["missing", "garbled", "points nowhere"])
def test_a_damaged_pointer_falls_back_to_the_newest_readable_generation(small_index, damage):
    store = small_index.store
    txn = store.begin()
    add(txn, "second.txt", ["the second generation"], seed=5)
    txn.commit()
    if damage == "missing":
        store.pointer_path.unlink()
    elif damage == "garbled":
        store.pointer_path.write_text("{not json")
    else:
        store.pointer_path.write_text(json.dumps({"format": 1, "generation": "gen-000042"}))
    fresh = IndexStore(store.root)
    snapshot = fresh.open()
    try:
        assert snapshot.folder.name == "gen-000002" and snapshot.count_files() == 5
        assert snapshot.problems and fresh.notes, "the fallback is reported"
    finally:
        snapshot.close()
    txn = fresh.begin()  # the next write repairs the pointer
    assert txn.repaired
    assert txn.commit() == "gen-000003"
    assert pointer(IndexStore(store.root))["generation"] == "gen-000003"


def test_a_pointer_of_another_format_is_refused(small_index):
    store = small_index.store
    store.pointer_path.write_text(json.dumps({"format": 99, "generation": "gen-000001"}))
    with pytest.raises(SixfoldError, match="format 99"):
        store.open()


def test_a_missing_index_and_a_foreign_folder_are_clear_errors(tmp_path):
    with pytest.raises(SixfoldError, match="no index at"):
        IndexStore(tmp_path / "nothing").open()
    with pytest.raises(SixfoldError, match="no index at"):
        IndexStore(tmp_path / "nothing").begin()  # a new index needs its settings
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(SixfoldError, match="not a sixfold index and is not empty"):
        IndexStore(foreign).check_usable_for_new()
    with pytest.raises(SixfoldError, match="not a sixfold index"):
        IndexStore(foreign).open()


def test_unknown_index_type_and_language_are_refused(tmp_path):
    with pytest.raises(SixfoldError, match="unknown index type"):
        IndexStore(tmp_path / "a").begin(settings(index_type="annoy"))
    with pytest.raises(SixfoldError, match="no stemmer for language 'xx'"):
        IndexStore(tmp_path / "b").begin(settings(language="xx"))
    assert not list((tmp_path / "a").glob("gen-*")) and not list((tmp_path / "b").glob("gen-*"))


def test_a_damaged_vectors_file_is_rebuilt_from_duckdb_by_the_next_write(small_index):
    store = small_index.store
    (store.generations()[-1] / "vectors.faiss").write_bytes(b"garbage")
    txn = store.begin()
    assert any("rebuilt vectors.faiss" in r for r in txn.repaired)
    txn.commit()
    snapshot = Snapshot(store.generations()[-1])
    try:
        assert snapshot.vectors.ntotal == 6
        np.testing.assert_array_equal(snapshot.embeddings([0, 1])[1], small_index.vectors["notes/steam.md"])
    finally:
        snapshot.close()


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_a_rebuilt_vector_index_reads_duckdb_in_blocks_and_equals_one_built_in_memory(tmp_path, monkeypatch, kind):
    """Rebuilding the FAISS index from DuckDB (a damaged file here; also a retrain as the corpus grows, a new model)
    reads the embeddings a block of chunk ids at a time, so memory never holds all of them (15 GB at 10M chunks),
    and gives the index that ``build_index`` makes from all of them in memory: same ids, same search results."""
    from sixfold.indexer import store as store_module
    from sixfold.indexer import vectors as vec

    store = IndexStore(tmp_path / "index")
    txn = store.begin(settings(index_type=kind))
    for n in range(300):
        add(txn, f"f{n:03d}.txt", [f"text {n}"], seed=n)
    for n in range(0, 300, 7):  # gaps in the chunk ids
        txn.remove_file(ROOT, f"f{n:03d}.txt")
    txn.commit()
    snapshot = Snapshot(store.generations()[-1])
    try:
        ids, vectors = snapshot.embeddings()
    finally:
        snapshot.close()
    expected = vec.build_index(kind, DIM, ids, vectors)
    assert vec.index_kind(expected) == kind

    reads: list[int] = []
    real = store_module._embedding_arrays

    def counted(table, dim):
        reads.append(table.num_rows)
        return real(table, dim)

    monkeypatch.setattr(store_module, "EMBEDDING_BLOCK", 37)
    monkeypatch.setattr(store_module, "_embedding_arrays", counted)
    (store.generations()[-1] / "vectors.faiss").write_bytes(b"garbage")
    txn = store.begin()
    assert any("rebuilt vectors.faiss" in r for r in txn.repaired)
    rebuilt = txn.vectors
    assert vec.index_kind(rebuilt) == kind and rebuilt.ntotal == len(ids)
    blocks = reads[1:] if kind != "flat" else reads  # a trained kind first reads its training sample
    assert max(blocks) <= 37 and sum(blocks) == len(ids)
    queries = unit_vectors(20, seed=1000)
    got, want = rebuilt.search(queries, 10), expected.search(queries, 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    txn.commit()


def test_a_rebuild_puts_rows_stored_out_of_id_order_back_in_order(monkeypatch):
    """The blocks are read without ORDER BY (DuckDB's sort held a block's worth more memory); rows stored out of id
    order still reach FAISS in id order, as ``build_index`` adds them."""
    import duckdb

    from sixfold.indexer import store as store_module
    from sixfold.indexer import vectors as vec

    con = duckdb.connect()
    con.execute(store_module.SCHEMA.format(dim=DIM))
    vectors = unit_vectors(90, seed=5)
    for n in reversed(range(90)):
        con.execute("INSERT INTO chunks (chunk_id, embedding) VALUES (?, ?)", [n * 3, vectors[n].tolist()])
    monkeypatch.setattr(store_module, "EMBEDDING_BLOCK", 25)
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    rebuilt = store_module._build_vectors(con, "flat", DIM)
    expected = vec.build_index("flat", DIM, np.arange(90, dtype=np.int64) * 3, vectors)
    np.testing.assert_array_equal(faiss_ids(rebuilt), faiss_ids(expected))
    queries = unit_vectors(5, seed=6)
    np.testing.assert_array_equal(rebuilt.search(queries, 90)[1], expected.search(queries, 90)[1])
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == limit  # the cache cap is lifted after


def faiss_ids(index) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map)
