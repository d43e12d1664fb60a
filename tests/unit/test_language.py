"""Language detection (py3langid, its packaged model) and the per-language BM25 fields, model-free."""

from __future__ import annotations

import pytest

from sixfold.core.errors import SixfoldError
from sixfold.indexer.language import UNDETERMINED, detect, detect_query
from sixfold.indexer.lexical import LexicalIndex, check_language, field_language
from sixfold.reader.types import NOT_FOUND, not_found_reply, not_found_text


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Cómo configuro el cortafuegos en Debian?", "es"),
        ("How do I configure the firewall on Debian?", "en"),
        ("Wie installiere ich ein Paket?", "de"),
        ("Quelle est la capitale de la France ?", "fr"),
    ],
)
def test_detects_short_questions(text, language):
    assert detect(text).language == language


def test_too_little_text_is_undetermined_and_a_query_falls_back_to_the_index_language():
    assert detect("apt-get").language == UNDETERMINED
    assert detect("").language == UNDETERMINED
    assert detect_query("apt-get install", ["es"]) == "es"
    assert detect_query("apt-get install", ["es", "en"]) == UNDETERMINED


def test_a_long_document_is_sampled_from_start_middle_and_end():
    text = "Esta es una frase en español sobre la instalación de paquetes. " * 400
    found = detect(text)
    assert found.language == "es" and found.probability > 0.9


def test_one_index_stems_each_chunk_in_its_language():
    rows = [([0, 1, 2], ["los usuarios del sistema", "the engines are running", "red de área local"], ["es", "en", "es"])]
    index = LexicalIndex.build(None, "auto", rows, per_language=True)
    assert [cid for cid, _ in index.search("usuario", 5, languages=["es", "en"])] == [0]
    assert [cid for cid, _ in index.search("engine", 5, languages=["es", "en"])] == [1]
    # analysed only in English, the Spanish chunk's stem "usuari" is not reached by "usuario" -> "usuario"
    assert index.search("usuario", 5, languages=["en"]) == []


def test_languages_without_a_stemmer_share_the_plain_field():
    assert field_language("ja") == field_language("und") == field_language(None) == "other"
    assert field_language("es") == "es"
    check_language("auto")
    with pytest.raises(SixfoldError, match="no stemmer for language 'xx'"):
        check_language("xx")


def test_abstention_speaks_the_question_language():
    assert not_found_text("¿Quién ganó el mundial de fútbol de 2018?") == "no se encuentra en el corpus"
    assert not_found_text("Who won the 2018 World Cup?") == NOT_FOUND


def test_a_chat_reply_abstains_in_the_questions_language():
    spanish = "¿Quién ganó el mundial de fútbol de 2018 en Rusia?"
    assert not_found_reply(spanish, closest=True).startswith("No encontré la respuesta")
    assert "ningún pasaje" in not_found_reply(spanish, closest=False)
    assert not_found_reply("Who won the 2018 World Cup in Russia?", closest=True).startswith("I could not find an answer")


def test_the_reader_prompt_says_any_language_only_when_something_is_not_english():
    from sixfold.reader.generative import SYSTEM, SYSTEM_ANY_LANGUAGE, Sentence, _system

    english = [Sentence(0, 0, 10, "The firewall blocks every incoming connection unless a rule allows it.")]
    spanish = [Sentence(0, 0, 10, "La configuración de la red se guarda en el fichero interfaces, dentro del directorio.")]
    assert _system("Which connections does the firewall block by default?", english) == SYSTEM
    assert _system("¿Dónde se guarda la configuración de la red del sistema?", spanish) == SYSTEM_ANY_LANGUAGE
    assert _system("Where is the network configuration of the system kept?", spanish) == SYSTEM_ANY_LANGUAGE
    assert "any language" in SYSTEM_ANY_LANGUAGE and "any language" not in SYSTEM
