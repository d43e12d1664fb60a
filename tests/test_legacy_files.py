"""OpenAI's 2021 document files, live: ``/v1/files`` purposes ``search``, ``answers`` and ``classifications``
(checked row by row on upload, listed, read back, deleted) and ``file`` on ``/v1/engines/{id}/search``,
``/v1/answers`` and ``/v1/classifications`` (a keyword pre-search of ``max_rerank`` / ``max_examples`` rows, then the
Engine reranks; ``return_metadata``, ``return_prompt``, ``expand``, ``labels``), through the legacy ``openai`` 0.25
client and httpx.

Real everything: uvicorn on a free loopback port, the packaged embedder and language model, tantivy for the keyword
pre-search, the files on disk inside a private copy of the shared index.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from test_server import run_legacy

from sixfold.http.jobs import FineTuneJob

from conftest import MODEL, copy_index
from live_server import LiveServer

FACTS = [
    "The Normans were descended from Norse raiders and pirates from Denmark, Iceland and Norway.",
    "Oxygen is a chemical element with the atomic number 8.",
    "Carbon is a chemical element found in all known life; diamonds are made of it.",
    "The Amazon rainforest covers most of the Amazon basin of South America.",
    "The Black Death was a bubonic plague pandemic that struck Europe in the 14th century.",
    "A steam engine turns the heat of steam into mechanical work with pistons.",
    "Packet switching groups data into packets that travel a network independently.",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Mount Everest is the highest mountain above sea level, in the Himalayas.",
    "The Nile flows north through eleven countries into the Mediterranean Sea.",
    "Honey bees communicate the direction of flowers with a waggle dance.",
    "Photosynthesis lets plants make sugar from light, water and carbon dioxide.",
    "The Great Wall of China was built over centuries to guard the northern border.",
    "Jupiter is the largest planet of the solar system, a gas giant.",
    "The printing press of Gutenberg spread books across fifteenth-century Europe.",
    "Penguins cannot fly but swim fast in the cold southern oceans.",
    "The Pacific is the deepest ocean; the Mariana Trench lies in it.",
    "Vikings from Scandinavia sailed longships to raid and trade along European coasts.",
    "A violin has four strings and is played with a bow.",
    "Coffee beans are the roasted seeds of the Coffea plant.",
    "The human heart pumps blood through arteries and veins.",
    "Rome was the capital of an empire that ringed the Mediterranean.",
    "Glaciers are slow rivers of ice that carve valleys.",
    "The Sahara is the largest hot desert, across North Africa.",
    "Chess is a board game for two players on sixty-four squares.",
]
SEARCH_ROWS = [{"text": text, "metadata": {"source": f"facts/{i}"}} for i, text in enumerate(FACTS)]
NORMANS, OXYGEN = 0, 1
EXAMPLES = [
    ("please refund my money", "billing"),
    ("I was charged two times for one order", "billing"),
    ("my credit card payment failed", "billing"),
    ("why is there an extra fee on my invoice", "billing"),
    ("reset my password", "account"),
    ("I cannot log in to my account", "account"),
    ("change the email address of my profile", "account"),
    ("delete my account please", "account"),
    ("where is my parcel", "shipping"),
    ("the package arrived damaged", "shipping"),
    ("how long does delivery take to Spain", "shipping"),
    ("track my order shipment", "shipping"),
]
EXAMPLE_ROWS = [{"text": t, "label": label, "metadata": {"ticket": 100 + i}} for i, (t, label) in enumerate(EXAMPLES)]


def jsonl(rows: list) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_index):
    """The server over a private copy of the shared index (uploads are stored inside it)."""
    from sixfold.http import create_app

    index = copy_index(shared_index.path, tmp_path_factory.mktemp("files") / "idx")
    with LiveServer(create_app(index, warm=False, embedders=1)) as live:
        live.index = index
        yield live


def upload(server, rows_or_bytes, purpose: str, name: str = "rows.jsonl") -> httpx.Response:
    data = rows_or_bytes if isinstance(rows_or_bytes, bytes) else jsonl(rows_or_bytes)
    return httpx.post(server.url + "/v1/files", files={"file": (name, data)}, data={"purpose": purpose}, timeout=60)


def uploaded(server, rows, purpose: str) -> str:
    response = upload(server, rows, purpose)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=240)


# ---- the legacy 0.x client ----------------------------------------------------------------------------
def test_document_files_with_the_legacy_client(server, tmp_path):
    paths = []
    for name, rows in (("facts.jsonl", SEARCH_ROWS), ("answers.jsonl", SEARCH_ROWS), ("tickets.jsonl", EXAMPLE_ROWS)):
        (tmp_path / name).write_bytes(jsonl(rows))
        paths.append(str(tmp_path / name))
    out = run_legacy(server, "files", *paths)
    ids = out["ids"]
    listed = {f["id"]: f for f in out["listed"]["data"]}
    assert {listed[ids[p]]["purpose"] for p in ids} == {"search", "answers", "classifications"}
    assert listed[ids["search"]]["filename"] == "facts.jsonl" and listed[ids["search"]]["bytes"] == len(jsonl(SEARCH_ROWS))
    assert out["retrieved"]["purpose"] == "answers" and out["retrieved"]["id"] == ids["answers"]
    assert out["content"] == jsonl(EXAMPLE_ROWS).decode()

    found = out["search"]["data"]
    assert found and len(found) <= 5 and found[0]["document"] == NORMANS
    assert found[0]["text"] == FACTS[NORMANS] and found[0]["metadata"] == {"source": f"facts/{NORMANS}"}
    assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)

    answer = out["answer"]
    assert answer["object"] == "answer" and len(answer["answers"]) == 1
    assert answer["selected_documents"][0] == {"document": OXYGEN, "text": FACTS[OXYGEN], "metadata": {"source": "facts/1"}}
    assert len(answer["selected_documents"]) <= 2
    assert answer["sources"][0] == {"document": OXYGEN, "path": "answers.jsonl", "location": "line 2"}
    assert "What is the atomic number of oxygen?" in answer["prompt"] and FACTS[OXYGEN] in answer["prompt"]
    assert answer["file"]["id"] == ids["answers"] and answer["file"]["purpose"] == "answers"  # expanded
    completion = answer["completion"]
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"] == answer["answers"][0]
    if answer["found"]:
        assert "8" in answer["answers"][0]

    classified = out["classification"]
    assert classified["label"] == "billing"
    first = classified["selected_examples"][0]
    assert first["label"] == "billing" and first["text"] == EXAMPLES[first["document"]][0]
    assert first["metadata"] == {"ticket": 100 + first["document"]}
    assert "Text: my card was charged twice\nCategory:" in classified["prompt"]
    assert classified["file"] == ids["classifications"]  # not expanded: the id
    restricted = out["restricted"]
    assert restricted["label"] in ("account", "shipping") and set(restricted["scores"]) == {"account", "shipping"}
    assert {e["label"] for e in restricted["selected_examples"]} <= {"account", "shipping"}
    assert restricted["file"]["id"] == ids["classifications"]

    assert out["errors"]["wrong_purpose"]["status"] == 400 and "'answers'" in out["errors"]["wrong_purpose"]["message"]
    assert out["deleted"] == {"id": ids["search"], "object": "file", "deleted": True}
    assert out["errors"]["deleted_file"]["status"] == 404
    assert ids["search"] not in out["listed_after"] and ids["answers"] in out["listed_after"]


# ---- search: keyword pre-search, then the Engine reranks ---------------------------------------------
def test_file_search_picks_max_rerank_rows_by_keyword_then_ranks_them_like_inline_documents(server, shared_index):
    file_id = uploaded(server, SEARCH_ROWS, "search")
    query = "Which element has the atomic number 8?"
    every = post(server, f"/v1/engines/{MODEL}/search", {"query": query, "file": file_id, "max_rerank": 200}).json()
    expected = shared_index.engine.rank_texts(query, FACTS, k=len(FACTS))
    assert [r["document"] for r in every["data"]] == [p.id for p in expected]  # fewer rows than max_rerank: all ranked
    np.testing.assert_allclose([r["score"] for r in every["data"]], [p.score for p in expected], atol=1e-5)
    assert every["data"][0]["document"] == OXYGEN and "metadata" not in every["data"][0] and every["file"] == file_id

    picked = post(server, "/v1/search", {"query": "Norse raiders", "file": file_id, "max_rerank": 3}).json()["data"]
    # only rows sharing a word with the query pass the keyword pre-search (the Normans'; not the Vikings' "raid")
    assert 1 <= len(picked) <= 3 and picked[0]["document"] == NORMANS
    assert all(any(w in FACTS[r["document"]].lower() for w in ("norse", "raid")) for r in picked)
    none = post(server, "/v1/search", {"query": "xylophone quartet", "file": file_id, "max_rerank": 3}).json()
    assert none["data"] == []


def test_file_answers_read_the_best_reranked_rows(server):
    file_id = uploaded(server, SEARCH_ROWS, "answers")
    body = {"question": "How high is Mount Everest above the sea?", "file": file_id, "max_rerank": 4, "k": 1}
    answer = post(server, "/v1/answers", {**body, "return_metadata": True}).json()
    assert answer["selected_documents"] == [{"document": 8, "text": FACTS[8], "metadata": {"source": "facts/8"}}]
    assert answer["file"] == file_id and answer["completion"].startswith("cmpl-") and "prompt" not in answer


# ---- classifications from a file ------------------------------------------------------------------------
def test_file_classification_labels_from_the_picked_examples(server):
    file_id = uploaded(server, EXAMPLE_ROWS, "classifications")
    body = {"query": "where is my parcel, it has not arrived", "file": file_id, "max_examples": 3, "return_metadata": True}
    done = post(server, "/v1/classifications", body)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["label"] == "shipping" and set(result["scores"]) == {"billing", "account", "shipping"}
    assert result["selected_examples"][0]["document"] == 8  # "where is my parcel"
    for example in result["selected_examples"]:
        row = EXAMPLE_ROWS[example["document"]]
        assert (example["text"], example["label"], example["metadata"]) == (row["text"], row["label"], row["metadata"])
    prompted = post(server, "/v1/classifications", {**body, "labels": ["billing", "account"], "return_prompt": True}).json()
    assert prompted["label"] in ("billing", "account") and "shipping" not in prompted["prompt"]
    assert prompted["prompt"].startswith("Please classify a piece of text into the following categories: ")
    expanded = post(server, "/v1/classifications", {**body, "expand": ["completion"]}).json()
    assert expanded["completion"]["choices"][0]["text"] == "shipping" and expanded["file"] == file_id


# ---- files: list, content, delete ------------------------------------------------------------------------
def test_files_are_listed_by_purpose_read_back_and_deleted(server):
    answers_id = uploaded(server, SEARCH_ROWS[:3], "answers")
    tickets_id = uploaded(server, EXAMPLE_ROWS, "classifications")
    listed = httpx.get(server.url + "/v1/files", params={"purpose": "classifications"}, timeout=30).json()["data"]
    assert tickets_id in {f["id"] for f in listed} and all(f["purpose"] == "classifications" for f in listed)
    content = httpx.get(f"{server.url}/v1/files/{answers_id}/content", timeout=30)
    assert content.status_code == 200 and content.content == jsonl(SEARCH_ROWS[:3])
    stored = Path(server.index) / "server-files"
    assert (stored / f"{answers_id}.jsonl").is_file()

    gone = httpx.delete(f"{server.url}/v1/files/{answers_id}", timeout=30)
    assert gone.status_code == 200 and gone.json() == {"id": answers_id, "object": "file", "deleted": True}
    assert not (stored / f"{answers_id}.jsonl").exists() and not (stored / f"{answers_id}.json").exists()
    for response in (
        httpx.get(f"{server.url}/v1/files/{answers_id}", timeout=30),
        httpx.get(f"{server.url}/v1/files/{answers_id}/content", timeout=30),
        httpx.delete(f"{server.url}/v1/files/{answers_id}", timeout=30),
        post(server, "/v1/answers", {"question": "Who were the Normans?", "file": answers_id}),
    ):
        assert response.status_code == 404, response.text
        assert answers_id in response.json()["error"]["message"]


def test_a_file_a_fine_tune_trains_on_is_not_deleted(server):
    file_id = uploaded(server, b'{"question": "q", "context": "c", "answer": "c"}\n', "fine-tune")
    service = server.app.state.service
    job = FineTuneJob("ft-test", "reader", "reader", file_id, file_id, {}, "no", 1, status="running")
    service.fine_tunes.jobs[job.id] = job
    try:
        refused = httpx.delete(f"{server.url}/v1/files/{file_id}", timeout=30)
        assert refused.status_code == 409 and "ft-test" in refused.json()["error"]["message"]
    finally:
        job.status = "failed"
    assert httpx.delete(f"{server.url}/v1/files/{file_id}", timeout=30).status_code == 200


# ---- 4xx: one clear message each --------------------------------------------------------------------------
BAD_UPLOADS = [
    ("answers", b'{"text": "fine"}\n{"text": "cut off\n', "line 2", "not valid JSON"),
    ("search", b'{"text": "fine"}\n\n["a list"]\n', "line 3", "JSON object"),
    ("answers", b'{"text": "fine"}\n{"text": "   ", "metadata": 1}\n', "line 2", "'text'"),
    ("search", b'{"metadata": "no text"}\n', "line 1", "'text'"),
    ("classifications", b'{"text": "a", "label": "x"}\n{"text": "b"}\n', "line 2", "'label'"),
    ("classifications", b'{"text": "a", "label": "x"}\n{"text": "b", "label": 3}\n', "line 2", "'label'"),
    ("classifications", b'{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', "one label", "two"),
    ("answers", b"\xff\xfe not utf-8", "UTF-8", "JSONL"),
    ("answers", b"\n\n", "empty", "file"),
    ("embeddings", b'{"text": "a"}\n', "purpose 'embeddings'", "classifications"),
]


@pytest.mark.parametrize(("purpose", "data", "first", "second"), BAD_UPLOADS, ids=[f"{p} {f}" for p, _d, f, _s in BAD_UPLOADS])
def test_a_bad_upload_is_one_400_naming_the_line(server, purpose, data, first, second):
    def stored() -> set[str]:
        return {p.name for p in (Path(server.index) / "server-files").glob("*")}

    before = stored()
    response = upload(server, data, purpose, name="bad.jsonl")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert first.lower() in error["message"].lower() and second.lower() in error["message"].lower(), error["message"]
    assert stored() == before  # nothing kept


def test_the_calls_refuse_an_unknown_file_a_wrong_purpose_and_paths(server):
    search_id = uploaded(server, SEARCH_ROWS[:3], "search")
    tickets_id = uploaded(server, EXAMPLE_ROWS, "classifications")
    missing = "file-" + "0" * 24
    cases = [
        ("/v1/search", {"query": "Normans", "file": missing}, 404, missing),
        ("/v1/answers", {"question": "Normans?", "file": missing}, 404, missing),
        ("/v1/classifications", {"query": "refund", "file": missing}, 404, missing),
        ("/v1/search", {"query": "Normans", "file": tickets_id}, 400, "purpose 'search'"),
        ("/v1/answers", {"question": "Normans?", "file": search_id}, 400, "purpose 'answers'"),
        ("/v1/classifications", {"query": "refund", "file": search_id}, 400, "purpose 'classifications'"),
        ("/v1/classifications", {"query": "refund", "file": "index"}, 400, "no labels"),
        ("/v1/classifications", {"query": "refund", "file": tickets_id, "labels": ["billing", "legal"]}, 400, "'legal'"),
        ("/v1/classifications", {"query": "refund", "file": tickets_id, "labels": ["billing"]}, 400, "two labels"),
        ("/v1/classifications", {"query": "refund", "file": tickets_id, "expand": ["everything"]}, 400, "'expand[0]'"),
        ("/v1/search", {"query": "Normans", "file": search_id, "documents": ["a"]}, 400, "not both"),
        ("/v1/search", {"query": "Normans", "file": "server-files/" + search_id + ".jsonl"}, 400, "reads no files"),
    ]
    for path, body, status, fragment in cases:
        response = post(server, path, body)
        assert response.status_code == status, (path, body, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert fragment.lower() in error["message"].lower(), (body, error["message"])
