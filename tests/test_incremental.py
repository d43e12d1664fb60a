"""Incremental re-indexing: only new, changed, renamed and deleted files are touched; nothing stale remains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss

from sixfold import Engine


def pointer_generation(index: Path) -> str:
    return json.loads((index / "sixfold-index.json").read_text())["generation"]


def assert_consistent(engine: Engine) -> set[int]:
    """FAISS, DuckDB and tantivy hold exactly the same chunks; returns their ids."""
    snapshot = engine.snapshot()
    db_ids = {r[0] for r in snapshot.con.execute("SELECT chunk_id FROM chunks").fetchall()}
    vectors = snapshot.vectors
    assert vectors.ntotal == len(db_ids) == snapshot.count_chunks()
    faiss_ids = set(faiss.vector_to_array(vectors.id_map).tolist()) if hasattr(vectors, "id_map") else None
    if faiss_ids is not None:
        assert faiss_ids == db_ids
    assert snapshot.lexical.count() == len(db_ids)
    files = {r[0]: r[1] for r in snapshot.con.execute("SELECT path, n_chunks FROM files").fetchall()}
    per_file = dict(snapshot.con.execute("SELECT path, count(*) FROM chunks GROUP BY path").fetchall())
    assert files == per_file
    status = engine.status()
    assert status.chunks == len(db_ids) and status.documents == len(files)
    return db_ids


def paths_of(hits) -> set[str]:
    return {h.path for h in hits}


def test_second_run_without_changes_touches_nothing(indexed):
    before = pointer_generation(indexed.index)
    ids_before = assert_consistent(indexed.engine)
    report = indexed.engine.index(indexed.folder)
    assert report.touched == 0
    assert report.unchanged == 6
    assert report.chunks_added == 0 and report.chunks_removed == 0
    assert report.generation is None
    assert pointer_generation(indexed.index) == before
    assert not list(indexed.index.glob("gen-*.tmp"))
    assert assert_consistent(indexed.engine) == ids_before


def test_touching_mtime_only_is_not_a_change(indexed):
    import os

    target = indexed.folder / "science" / "steam_engine.txt"
    os.utime(target, (1_000_000_000, 1_000_000_000))
    report = indexed.engine.index(indexed.folder)
    assert report.touched == 0


def test_added_file_is_the_only_one_indexed(indexed):
    new = indexed.folder / "technology" / "zorblax.txt"
    new.write_text("The zorblax reactor converts marmalade into quantum flapdoodle at room temperature.\n")
    ids_before = assert_consistent(indexed.engine)
    report = indexed.engine.index(indexed.folder)
    assert (report.added, report.updated, report.removed, report.renamed, report.unchanged) == (1, 0, 0, 0, 6)
    assert report.chunks_added == 1 and report.chunks_removed == 0
    ids_after = assert_consistent(indexed.engine)
    assert ids_before < ids_after and len(ids_after - ids_before) == 1
    for mode in ("bm25", "dense", "hybrid"):
        hits = indexed.engine.search("zorblax reactor marmalade", k=1, mode=mode)
        assert hits[0].path == "technology/zorblax.txt", mode


def test_edited_file_is_updated_and_old_chunks_are_gone(indexed):
    target = indexed.folder / "science" / "steam_engine.txt"
    paragraphs = target.read_text().split("\n\n")
    kept = [p for p in paragraphs if "Rankine" not in p]
    assert len(kept) < len(paragraphs), "the fixture text must contain the phrase we remove"
    new_paragraph = "A zorblax steam turbine hums quietly in the basement of the flapdoodle factory."
    target.write_text("\n\n".join(kept + [new_paragraph]) + "\n")

    snapshot = indexed.engine.snapshot()
    old_ids = {
        r[0] for r in snapshot.con.execute("SELECT chunk_id FROM chunks WHERE path = 'science/steam_engine.txt'").fetchall()
    }
    report = indexed.engine.index(indexed.folder)
    assert (report.added, report.updated, report.removed, report.renamed, report.unchanged) == (0, 1, 0, 0, 5)
    assert report.chunks_removed == len(old_ids)
    ids = assert_consistent(indexed.engine)
    assert not (old_ids & ids), "chunks of the old version are still indexed"

    snapshot = indexed.engine.snapshot()
    assert snapshot.con.execute("SELECT count(*) FROM chunks WHERE text LIKE '%Rankine%'").fetchone()[0] == 0
    assert indexed.engine.search("Rankine", k=5, mode="bm25") == []
    assert all("Rankine" not in h.text for h in indexed.engine.search("Rankine thermodynamic cycle", k=10))
    hits = indexed.engine.search("zorblax flapdoodle turbine", k=1, mode="bm25")
    assert hits and hits[0].path == "science/steam_engine.txt" and "zorblax" in hits[0].text
    assert indexed.engine.search("zorblax steam turbine in the basement", k=1, mode="dense")[0].path == "science/steam_engine.txt"


def test_deleted_file_is_removed_everywhere(indexed):
    snapshot = indexed.engine.snapshot()
    old_ids = {r[0] for r in snapshot.con.execute("SELECT chunk_id FROM chunks WHERE path = 'science/oxygen.html'").fetchall()}
    assert old_ids
    (indexed.folder / "science" / "oxygen.html").unlink()
    report = indexed.engine.index(indexed.folder)
    assert (report.added, report.updated, report.removed, report.renamed, report.unchanged) == (0, 0, 1, 0, 5)
    assert report.chunks_removed == len(old_ids)
    ids = assert_consistent(indexed.engine)
    assert not (old_ids & ids)

    snapshot = indexed.engine.snapshot()
    assert snapshot.con.execute("SELECT count(*) FROM files WHERE path = 'science/oxygen.html'").fetchone()[0] == 0
    assert snapshot.con.execute("SELECT count(*) FROM chunks WHERE path = 'science/oxygen.html'").fetchone()[0] == 0
    # BM25: 'chalcogen' only occurred in oxygen.html
    assert indexed.engine.search("chalcogen", k=5, mode="bm25") == []
    # FAISS: none of the deleted vectors can come back, even when asking for everything
    everything = indexed.engine.search("What is the atomic number of oxygen?", k=len(ids) + 10, mode="dense")
    assert len(everything) == len(ids)
    assert "science/oxygen.html" not in paths_of(everything)
    assert "science/oxygen.html" not in paths_of(indexed.engine.search("oxygen chalcogen element", k=20))


def test_renamed_file_keeps_vectors_and_shows_new_path(indexed):
    snapshot = indexed.engine.snapshot()
    old = dict(snapshot.con.execute("SELECT chunk_id, text FROM chunks WHERE path = 'history/normans.md'").fetchall())
    (indexed.folder / "archive").mkdir()
    shutil.move(indexed.folder / "history" / "normans.md", indexed.folder / "archive" / "norsemen.md")
    report = indexed.engine.index(indexed.folder)
    assert report.renamed == 1
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 5)
    assert report.chunks_added == 0 and report.chunks_removed == 0, "a rename must not re-embed"
    assert_consistent(indexed.engine)
    snapshot = indexed.engine.snapshot()
    moved = dict(snapshot.con.execute("SELECT chunk_id, text FROM chunks WHERE path = 'archive/norsemen.md'").fetchall())
    assert moved == old, "same chunk ids and texts under the new name"
    for mode in ("hybrid", "dense", "bm25"):
        hits = indexed.engine.search("Who were the Normans descended from?", k=5, mode=mode)
        assert hits[0].path == "archive/norsemen.md", mode
        assert "history/normans.md" not in paths_of(hits)
    filtered = indexed.engine.search("Normans", k=5, where="path LIKE 'archive/%'")
    assert filtered and paths_of(filtered) == {"archive/norsemen.md"}


def test_rename_changes_ext_metadata(indexed):
    shutil.move(indexed.folder / "science" / "steam_engine.txt", indexed.folder / "science" / "steam_engine.text")
    report = indexed.engine.index(indexed.folder)
    assert report.renamed == 1 and report.chunks_added == 0
    hits = indexed.engine.search("steam engine", k=5, where="ext = 'text'")
    assert hits and paths_of(hits) == {"science/steam_engine.text"}
    assert indexed.engine.search("steam engine", k=5, where="ext = 'txt'") == []


def test_add_edit_delete_rename_in_one_run(indexed):
    (indexed.folder / "new.md").write_text("# Zorblax\n\nThe zorblax is a small furry creature from the flapdoodle hills.\n")
    (indexed.folder / "technology" / "packet_switching.md").write_text("# Packet switching\n\nPackets are routed by quux.\n")
    (indexed.folder / "geography" / "amazon_rainforest.docx").unlink()
    shutil.move(indexed.folder / "science" / "oxygen.html", indexed.folder / "science" / "o2.html")
    report = indexed.engine.index(indexed.folder)
    assert (report.added, report.updated, report.removed, report.renamed, report.unchanged) == (1, 1, 1, 1, 3)
    assert_consistent(indexed.engine)
    files = {r["path"] for r in indexed.engine.snapshot().files()}
    assert files == {
        "new.md",
        "technology/packet_switching.md",
        "science/o2.html",
        "science/steam_engine.txt",
        "history/normans.md",
        "history/black_death.pdf",
    }
    # and a later run finds nothing to do
    again = indexed.engine.index(indexed.folder)
    assert again.touched == 0 and again.unchanged == 6


def test_two_folders_in_one_index_are_kept_apart(indexed, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("A note about zorblax marmalade, kept in another folder.\n")
    report = indexed.engine.index(other)
    assert report.added == 1 and report.removed == 0, "indexing a second folder must not drop the first one's files"
    assert indexed.engine.status().documents == 7
    hit = indexed.engine.search("zorblax marmalade", k=1, mode="bm25")[0]
    assert hit.root == str(other.resolve()) and hit.path == "note.txt"
    assert indexed.engine.search("Who were the Normans descended from?", k=1)[0].path == "history/normans.md"


def test_generations_are_pruned(indexed):
    for i in range(3):
        (indexed.folder / f"extra{i}.txt").write_text(f"Extra file number {i} about zorblax.\n")
        indexed.engine.index(indexed.folder)
    generations = sorted(p.name for p in indexed.index.glob("gen-*"))
    assert len(generations) <= 2
    assert pointer_generation(indexed.index) == generations[-1]
    assert not any(name.endswith(".tmp") for name in generations)


def test_a_pinned_snapshot_keeps_reading_its_generation_after_a_commit(indexed):
    """The server reads the pointer once per request: hits come from the generation the response names, even when
    a writer commits between its reads (a 50-thread search during re-indexing once got a newer generation's ids)."""
    reader = Engine.open(indexed.index)
    try:
        pinned = reader.snapshot()
        pinned.vectors, pinned.lexical  # noqa: B018 - opened as the server opens them
        (indexed.folder / "technology" / "zorblax.txt").write_text("The zorblax reactor converts marmalade into flapdoodle.\n")
        assert indexed.engine.index(indexed.folder).chunks_added == 1
        assert pointer_generation(indexed.index) != pinned.folder.name
        for mode in ("bm25", "dense", "hybrid"):
            old = reader.search("zorblax reactor marmalade", k=3, mode=mode, snapshot=pinned)
            assert "technology/zorblax.txt" not in paths_of(old), mode
        new = reader.search("zorblax reactor marmalade", k=1, mode="bm25")
        assert new[0].path == "technology/zorblax.txt"
    finally:
        reader.close()
