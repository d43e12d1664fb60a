"""Cross-lingual XQuAD-R (``eval retrieval --queries-from``): the sentences, ids and judgments of one file, the
questions of its parallel file; files that do not line up are refused; the report names both languages and what
the eval index got. Tiny files written here, no model."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.eval.datasets import load_retrieval_set, load_xquad_r, load_xquad_r_crosslingual
from sixfold.eval.reports import ModeScores, RetrievalReport
from sixfold.eval.retrieval import index_defaults

# (title, [paragraph: ([sentences], [(question id, question, answer text)])]); every answer is in one sentence.
EN = [
    (
        "Cities",
        [
            (
                ["Paris is the capital of France.", "It keeps the Louvre museum."],
                [("q1", "What is the capital of France?", "Paris"), ("q2", "Which museum is in Paris?", "Louvre")],
            ),
            (["Madrid lies in Spain.", "It is large."], [("q3", "Where is Madrid?", "Spain")]),
        ],
    ),
    ("Rivers", [(["The Ebro flows into the sea."], [("q4", "Where does the Ebro flow?", "sea")])]),
]
# The same in Spanish, with other sentence splits: q1 and q2 share one sentence here.
ES = [
    (
        "Cities",
        [
            (
                ["París es la capital de Francia y guarda el museo del Louvre."],
                [("q1", "¿Cuál es la capital de Francia?", "París"), ("q2", "¿Qué museo está en París?", "Louvre")],
            ),
            (["Madrid está en España.", "Es grande."], [("q3", "¿Dónde está Madrid?", "España")]),
        ],
    ),
    ("Rivers", [(["El Ebro desemboca en el mar."], [("q4", "¿Dónde desemboca el Ebro?", "mar")])]),
]


def _write(path: Path, articles) -> Path:
    """An XQuAD-R file: SQuAD JSON whose paragraphs carry ``sentences`` and ``sentence_breaks``."""
    data = []
    for title, paragraphs in articles:
        out = []
        for sentences, questions in paragraphs:
            context = " ".join(sentences)
            breaks, start = [], 0
            for sentence in sentences:
                breaks.append([start, start + len(sentence)])
                start += len(sentence) + 1
            qas = [
                {"id": qid, "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]} for qid, q, a in questions
            ]
            out.append({"context": context, "sentences": sentences, "sentence_breaks": breaks, "qas": qas})
        data.append({"title": title, "paragraphs": out})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "en.json", EN), _write(tmp_path / "es.json", ES)


def test_spanish_questions_over_english_sentences(files):
    en, es = files
    data = load_xquad_r_crosslingual(en, es)
    english = load_xquad_r(en)
    assert data.name == "xquad-r-es-en" and data.format == "xquad-r"
    assert data.language == "en" and data.query_language == "es"  # the corpus language picks the BM25 stemmer
    assert data.corpus == english.corpus  # sentences and their ids from the first file
    assert data.queries == {"q1": "¿Cuál es la capital de Francia?", "q2": "¿Qué museo está en París?",
                            "q3": "¿Dónde está Madrid?", "q4": "¿Dónde desemboca el Ebro?"}  # fmt: skip
    # judged by the English sentence that holds the English answer (the Spanish file puts q2 in its sentence 1-1)
    assert data.qrels == {"q1": {"1-1": 1}, "q2": {"1-2": 1}, "q3": {"2-1": 1}, "q4": {"3-1": 1}}
    assert load_xquad_r(es).qrels["q2"] == {"1-1": 1}
    assert data.queries_total == 4
    assert data.notes == [f"questions in 'es' ({es}), sentences in 'en' ({en})"]


def test_english_questions_over_spanish_sentences(files):
    en, es = files
    data = load_xquad_r_crosslingual(es, en)
    assert data.name == "xquad-r-en-es" and data.language == "es" and data.query_language == "en"
    assert data.queries["q2"] == "Which museum is in Paris?" and data.qrels["q2"] == {"1-1": 1}
    assert data.corpus == load_xquad_r(es).corpus


def test_the_order_of_a_paragraphs_questions_does_not_matter(tmp_path, files):
    en, _ = files
    (first, paragraphs), rest = ES[0], ES[1:]
    swapped = [(first, [(paragraphs[0][0], paragraphs[0][1][::-1]), *paragraphs[1:]]), *rest]
    data = load_xquad_r_crosslingual(en, _write(tmp_path / "other" / "es.json", swapped))
    assert set(data.queries) == {"q1", "q2", "q3", "q4"} and list(data.queries) == ["q1", "q2", "q3", "q4"]


def _renamed(articles, article: int, paragraph: int, question: int, new_id: str):
    title, paragraphs = articles[article]
    sentences, questions = paragraphs[paragraph]
    questions = [(new_id if n == question else qid, q, a) for n, (qid, q, a) in enumerate(questions)]
    paragraphs = [*paragraphs[:paragraph], (sentences, questions), *paragraphs[paragraph + 1 :]]
    return [*articles[:article], (title, paragraphs), *articles[article + 1 :]]


@pytest.mark.parametrize(
    ("spanish", "where"),
    [
        (ES[:1], "1 article in the questions' file, 2 in the sentences' file"),
        ([(ES[0][0], ES[0][1][:1]), *ES[1:]], "article 1 has 1 paragraph in the questions' file, 2 in the sentences' file"),
        (
            _renamed(ES, 0, 1, 0, "q9"),
            "article 1 paragraph 2 asks other questions (q9 in the questions' file, q3 in the sentences' file only)",
        ),
        (  # q3 asked again in another paragraph
            _renamed(ES, 1, 0, 0, "q3"),
            "article 2 paragraph 1 asks other questions (q3 in the questions' file, q4 in the sentences' file only)",
        ),
        (  # a paragraph without its question
            [ES[0], (ES[1][0], [(ES[1][1][0][0], [])])],
            "article 2 paragraph 1 asks other questions (q4 in the sentences' file only)",
        ),
    ],
)
def test_files_that_do_not_line_up_are_refused_in_one_line(tmp_path, files, spanish, where):
    en, _ = files
    es = _write(tmp_path / "bad" / "es.json", spanish)
    message = f"{es} and {en} are not parallel XQuAD-R files: {where}"
    with pytest.raises(SixfoldError, match=f"^{re.escape(message)}$") as caught:
        load_xquad_r_crosslingual(en, es)
    assert "\n" not in str(caught.value)


def test_only_xquad_r_files_are_read_cross_lingually(tmp_path, files):
    en, es = files
    folder = tmp_path / "beir"
    folder.mkdir()
    with pytest.raises(SixfoldError, match=re.escape(f"two parallel XQuAD-R .json files; {folder} is not one")):
        load_xquad_r_crosslingual(folder, es)
    with pytest.raises(SixfoldError, match="does not exist"):
        load_xquad_r_crosslingual(en, tmp_path / "fr.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SixfoldError, match="not SQuAD-style JSON"):
        load_xquad_r_crosslingual(en, tmp_path / "broken.json")


def test_a_single_file_reads_as_before(files):
    en, _ = files
    data = load_retrieval_set(en)
    assert data.name == "xquad-r-en" and data.language == "en" and data.query_language is None
    assert data.notes == ["language 'en' (from the file name) picks the BM25 stemmer of a new eval index"]


def _report(**extra) -> RetrievalReport:
    report = RetrievalReport("xquad-r-es-en", "xquad-r-es-en", "xquad-r", "test", 4, 4, 5, 5, 0.5, **extra)
    report.modes["bm25"] = ModeScores(0.5, 0.5, 1.0, 0.5, 0.1, 1.0, 2.0)
    return report


def test_the_report_names_both_languages_and_what_the_index_got():
    single = _report().to_dict()
    assert list(single) == [
        "dataset", "name", "format", "split", "queries", "queries_total", "documents", "chunks", "index_seconds",
        "notes", "reranker", "modes",
    ]  # fmt: skip
    defaults = {"model": "use-multilingual-v3", "search_mode": "hybrid", "languages": ["en"]}
    crossed = _report(query_language="es", corpus_language="en", index_defaults=defaults, query_modes={"dense": 4}).to_dict()
    assert crossed["query_language"] == "es" and crossed["corpus_language"] == "en"
    assert crossed["index_defaults"] == defaults and crossed["query_modes"] == {"dense": 4}
    assert list(crossed)[-1] == "modes" and crossed["modes"]["bm25"]["nDCG@10"] == 0.5


@dataclass
class _FutureStatus:
    """A status with a field this code has never heard of (``languages`` as a list)."""

    path: str = "/tmp/index"
    documents: int = 5
    chunks: int = 5
    model: str = "use-multilingual-v3"
    search_mode: str = "hybrid"
    language: str = "auto"
    languages: list[str] = field(default_factory=lambda: ["en", "es"])
    embedder_reads: tuple[str, ...] = ("en", "es")
    health: list[str] = field(default_factory=list)


def test_index_defaults_pass_new_status_fields_through():
    expected = {
        "model": "use-multilingual-v3",
        "search_mode": "hybrid",
        "language": "auto",
        "languages": ["en", "es"],
        "embedder_reads": ("en", "es"),
    }
    assert index_defaults(_FutureStatus()) == expected  # a dataclass: path, counts and health left out

    class WithToDict:
        def to_dict(self) -> dict:
            return {"model": "m", "chunks": 3, "search_mode": "dense", "created_at": None}

    assert index_defaults(WithToDict()) == {"model": "m", "search_mode": "dense"}


def test_the_printed_table_lists_languages_and_settings():
    from sixfold.cli.evaluate import crosslingual_rows

    report = _report(
        query_language="es",
        corpus_language="en",
        index_defaults={"model": "use-multilingual-v3", "search_mode": "hybrid", "languages": {"en": 5}},
        query_modes={"dense": 4},
    )
    assert crosslingual_rows(report) == [
        ("question language", "es"),
        ("corpus language", "en"),
        ("model", "use-multilingual-v3"),
        ("search mode", "hybrid"),
        ("languages", "en 5"),
        ("'default' mode per query", "dense 4"),
    ]
