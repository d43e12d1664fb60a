"""Run by tests/test_server.py with the legacy ``openai==0.25.0`` client (its own venv): the 2021 calls.

0.25.0 is the last release with ``Search``, ``Classification`` and ``Answer`` (0.26 removed them; 0.28.1 has
none). Usage: ``python legacy_openai_client.py BASE_URL MODEL [fine-tune TRAIN EVAL | fine-tune-generator TRAIN BASE
PROMPT | files SEARCH ANSWERS CLASSIFICATIONS]`` -> one JSON object on stdout.
"""

import json
import os
import sys
import time

import openai

openai.api_base = sys.argv[1]
openai.api_key = "sk-local"
model = sys.argv[2]
generator = os.environ.get("SIXFOLD_GENERATOR") or "qwen2.5-coder-1.5b-instruct"  # the server's language model


def dump(out):
    print(json.dumps(out, default=lambda o: o.to_dict_recursive() if hasattr(o, "to_dict_recursive") else str(o)))


if sys.argv[3:4] == ["fine-tune"]:
    with open(sys.argv[4], "rb") as train, open(sys.argv[5], "rb") as held_out:
        files = [openai.File.create(file=train, purpose="fine-tune"), openai.File.create(file=held_out, purpose="fine-tune")]
    job = openai.FineTune.create(
        training_file=files[0].id,
        validation_file=files[1].id,
        model="reader",
        max_steps=2,
        batch_size=4,
        eval_limit=3,
        activate="no",
    )
    created = job.status
    deadline = time.time() + 300
    while job.status in ("pending", "running") and time.time() < deadline:
        time.sleep(1)
        job = openai.FineTune.retrieve(id=job.id)
    dump(
        {
            "created_status": created,
            "job": job,
            "events": openai.FineTune.list_events(id=job.id),
            "models": [m.id for m in openai.Model.list().data],
        }
    )
    sys.exit(0)
if sys.argv[3:4] == ["fine-tune-generator"]:  # {prompt, completion} rows train the generator; then complete with it
    with open(sys.argv[4], "rb") as train:
        training = openai.File.create(file=train, purpose="fine-tune")
    job = openai.FineTune.create(
        training_file=training.id, model=sys.argv[5], max_steps=4, batch_size=4, eval_limit=4, activate="no"
    )
    deadline = time.time() + 600
    while job.status in ("pending", "running") and time.time() < deadline:
        time.sleep(1)
        job = openai.FineTune.retrieve(id=job.id)
    out = {"job": job, "events": openai.FineTune.list_events(id=job.id), "models": [m.id for m in openai.Model.list().data]}
    if job.status == "succeeded":
        out["completion"] = openai.Completion.create(
            model=job.fine_tuned_model, prompt=sys.argv[6], max_tokens=3, temperature=0, stop=["\n"]
        )
    dump(out)
    sys.exit(0)
if sys.argv[3:4] == ["files"]:  # File.create / list / retrieve / download / delete and file= on the 2021 calls
    ids = {}
    for purpose, path in zip(("search", "answers", "classifications"), sys.argv[4:7]):
        with open(path, "rb") as handle:
            made = openai.File.create(file=handle, purpose=purpose, user_provided_filename=os.path.basename(path))
        ids[purpose] = made.id
    out = {"ids": ids, "listed": openai.File.list(), "retrieved": openai.File.retrieve(ids["answers"])}
    out["content"] = openai.File.download(ids["classifications"]).decode()
    out["search"] = openai.Engine(model).search(
        file=ids["search"], query="Who were the Normans descended from?", max_rerank=5, return_metadata=True
    )
    out["answer"] = openai.Answer.create(
        model=generator,
        file=ids["answers"],
        question="What is the atomic number of oxygen?",
        examples_context="The Eiffel Tower is in Paris.",
        examples=[["Where is the Eiffel Tower?", "Paris"]],
        max_rerank=10,
        max_tokens=16,
        k=2,
        return_metadata=True,
        return_prompt=True,
        expand=["completion", "file"],
    )
    out["classification"] = openai.Classification.create(
        file=ids["classifications"], query="my card was charged twice", max_examples=4, return_metadata=True, return_prompt=True
    )
    out["restricted"] = openai.Classification.create(
        file=ids["classifications"], query="my card was charged twice", labels=["account", "shipping"], expand=["file"]
    )
    errors = {}
    try:
        openai.Answer.create(file=ids["classifications"], question="What is the atomic number of oxygen?")
    except openai.error.InvalidRequestError as exc:
        errors["wrong_purpose"] = {"status": exc.http_status, "message": str(exc)}
    out["deleted"] = openai.File.delete(ids["search"])
    try:
        openai.Engine(model).search(file=ids["search"], query="Normans")
    except openai.error.InvalidRequestError as exc:
        errors["deleted_file"] = {"status": exc.http_status, "message": str(exc)}
    out["errors"] = errors
    out["listed_after"] = [f.id for f in openai.File.list().data]
    dump(out)
    sys.exit(0)
documents = [
    "The Amazon rainforest covers most of the Amazon basin of South America.",
    "The Normans were descended from Norse raiders and pirates from Denmark, Iceland and Norway.",
    "Oxygen is a chemical element with the atomic number 8.",
]
out = {"version": openai.version.VERSION}
out["search_documents"] = openai.Search.create(model=model, query="Who were the Normans descended from?", documents=documents)
out["search_index"] = openai.Engine(model).search(
    query="Who were the Normans descended from?", file="index", max_rerank=3, return_metadata=True
)
out["classification"] = openai.Classification.create(
    model=model,
    query="my card was charged twice",
    examples=[
        ["please refund my money", "billing"],
        ["I was charged two times for one order", "billing"],
        ["reset my password", "account"],
        ["I cannot log in to my account", "account"],
    ],
    labels=["billing", "account"],
)
out["answer"] = openai.Answer.create(
    model=generator,
    question="What is the atomic number of oxygen?",
    documents=documents,
    examples_context="The Eiffel Tower is in Paris.",
    examples=[["Where is the Eiffel Tower?", "Paris"]],
    max_tokens=16,
    k=2,
)
try:
    openai.Search.create(model="ada", query="x", documents=["a", "b"])
    out["unknown_model"] = None
except openai.error.InvalidRequestError as exc:
    out["unknown_model"] = {"status": exc.http_status, "message": str(exc)}
dump(out)
