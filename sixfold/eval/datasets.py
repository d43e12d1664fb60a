"""Retrieval test collections for `sixfold eval retrieval`, read in their published formats with checks that name the
file and line.

- BEIR: a folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
- Classic SMART collections (Glasgow distribution of Cranfield, CISI, MEDLINE): a folder with a documents file
  (``*.ALL`` / ``cran.all.1400``), a queries file (``*.QRY`` / ``cran.qry``) and a judgements file (``*.REL`` /
  ``cranqrel``); records start ``.I <id>`` with fields ``.T`` title, ``.A`` authors, ``.B`` source, ``.W`` text,
  ``.X`` cross references. Only judged queries are scored (CISI judges 76 of its 112).
- XQuAD-R (LAReQA): a SQuAD-style JSON file whose paragraphs carry ``sentences`` and ``sentence_breaks``; every
  sentence is a document and a question's relevant document is the sentence that holds its answer.
- Folder QA sets (``sixfold eval qa --folder``): questions about a folder of documents, JSONL or TSV, each with its
  accepted answers (or an answer regex) and the file that answers it; rows without answers are unanswerable.

No library reads the SMART or XQuAD-R files (ir_datasets downloads its own copies), so these few readers are
hand-written.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sixfold.core.errors import SixfoldError
from sixfold.core.files import iter_jsonl


@dataclass
class RetrievalSet:
    """A test collection: documents, the judged queries, and their relevance judgements."""

    name: str
    format: str  # beir | classic | xquad-r
    corpus: dict[str, dict]  # doc id -> {"title", "text"}
    queries: dict[str, str]  # judged query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: gain}
    language: str = "en"  # the documents' language (it picks the BM25 stemmer of a new eval index)
    notes: list[str] = field(default_factory=list)
    queries_total: int = 0
    query_language: str | None = None  # set when the queries are in another language than the documents


def load_retrieval_set(path: str | Path, split: str = "test") -> RetrievalSet:
    """Read a BEIR folder, a classic SMART folder or an XQuAD-R JSON file, whichever ``path`` is."""
    path = Path(path)
    if not path.exists():
        raise SixfoldError(f"retrieval data {path} does not exist")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return load_xquad_r(path)
        raise SixfoldError(f"{path}: not a retrieval set (expected a BEIR or SMART folder, or an XQuAD-R .json file)")
    if (path / "corpus.jsonl").exists() or (path / "queries.jsonl").exists():
        return load_beir_set(path, split)
    if _classic_files(path) is not None:
        return load_classic(path)
    raise SixfoldError(
        f"{path}: not a retrieval set I know (BEIR: corpus.jsonl + queries.jsonl + qrels/<split>.tsv; "
        "SMART: *.ALL + *.QRY + *.REL)"
    )


# ---- BEIR ---------------------------------------------------------------------------------------
def _read_jsonl(path: Path, what: str) -> list[dict]:
    if not path.is_file():
        raise SixfoldError(f"BEIR {what} file {path} does not exist")
    rows = []
    for _number, where, row in iter_jsonl(path, invalid="not a BEIR row"):
        if not isinstance(row, dict) or "_id" not in row:
            raise SixfoldError(f"{where}: not a BEIR row (expected an object with an _id)")
        rows.append({**row, "_id": str(row["_id"])})
    if not rows:
        raise SixfoldError(f"BEIR {what} file {path} is empty")
    return rows


def load_beir(folder: str | Path, split: str = "test") -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus id -> {title, text}, query id -> text, qrels query -> {doc: relevance}) with checks that name the line."""
    data = load_beir_set(folder, split)
    return data.corpus, data.queries, data.qrels


def load_beir_set(folder: str | Path, split: str = "test") -> RetrievalSet:
    folder = Path(folder)
    if not folder.is_dir():
        raise SixfoldError(f"BEIR folder {folder} does not exist")
    corpus = {
        r["_id"]: {"title": r.get("title") or "", "text": r.get("text") or ""}
        for r in _read_jsonl(folder / "corpus.jsonl", "corpus")
    }
    queries_all = {r["_id"]: r.get("text") or "" for r in _read_jsonl(folder / "queries.jsonl", "queries")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise SixfoldError(f"BEIR qrels file {qrels_path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise SixfoldError(f"{qrels_path} line {number}: expected query-id, corpus-id, score")
            qid, did, score = row[0], row[1], row[2]
            if did not in corpus:
                raise SixfoldError(f"{qrels_path} line {number}: corpus id {did} is not in corpus.jsonl")
            if qid not in queries_all:
                raise SixfoldError(f"{qrels_path} line {number}: query id {qid} is not in queries.jsonl")
            qrels.setdefault(qid, {})[did] = int(float(score))
    if not qrels:
        raise SixfoldError(f"BEIR split '{split}' in {qrels_path} is empty")
    queries = {qid: queries_all[qid] for qid in qrels}
    return RetrievalSet(folder.name, "beir", corpus, queries, qrels, queries_total=len(queries))


# ---- classic SMART collections ------------------------------------------------------------------
_DOCS = re.compile(r"(\.all(\.\d+)?)$", re.I)


def _classic_files(folder: Path) -> tuple[Path, Path, Path] | None:
    files = [p for p in folder.iterdir() if p.is_file()]
    docs = [p for p in files if _DOCS.search(p.name)]
    queries = [p for p in files if p.name.lower().endswith(".qry")]
    rels = [p for p in files if p.name.lower().endswith(".rel") or p.name.lower() == "cranqrel"]
    if not (docs or queries or rels):
        return None
    for what, found in (("documents (*.ALL)", docs), ("queries (*.QRY)", queries), ("judgements (*.REL)", rels)):
        if not found:
            raise SixfoldError(f"SMART folder {folder} has no {what} file")
        if len(found) > 1:
            raise SixfoldError(f"SMART folder {folder} has several {what} files: {', '.join(p.name for p in found)}")
    return docs[0], queries[0], rels[0]


def _read_smart(path: Path) -> list[tuple[str, int, dict[str, str]]]:
    """Records of a SMART file: (id, line of its .I, {field letter: text})."""
    records: list[tuple[str, int, dict[str, list[str]]]] = []
    current: dict[str, list[str]] | None = None
    fieldname = None
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(".I"):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise SixfoldError(f"{path} line {number}: expected '.I <number>', got {line.strip()!r}")
            current = {}
            records.append((str(int(parts[1])), number, current))
            fieldname = None
        elif re.match(r"^\.[A-Z]\s*$", line):
            if current is None:
                raise SixfoldError(f"{path} line {number}: field {line.strip()} before the first '.I' record")
            fieldname = line.strip()[1]
            current.setdefault(fieldname, [])
        elif current is not None and fieldname is not None:
            current[fieldname].append(line.strip())
        elif line.strip():
            raise SixfoldError(f"{path} line {number}: text outside a record (a SMART file starts with '.I <number>')")
    if not records:
        raise SixfoldError(f"SMART file {path} has no records ('.I <number>' lines)")
    seen: dict[str, int] = {}
    out = []
    for rid, number, fields in records:
        if rid in seen:
            raise SixfoldError(f"{path} line {number}: record {rid} appears twice (first at line {seen[rid]})")
        seen[rid] = number
        out.append((rid, number, {k: " ".join(v).strip() for k, v in fields.items()}))
    return out


def _classic_judgements(
    rel_path: Path, corpus: dict[str, dict], queries: dict[str, str], docs_name: str, queries_name: str
) -> dict[str, dict[str, int]]:
    """query id -> {doc id: gain} from a SMART judgement file, in any of the three layouts ``load_classic`` names."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(rel_path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        cols = line.split()
        if not cols:
            continue
        try:
            if len(cols) == 3:
                qid, did, gain = cols[0], cols[1], max(0, 5 - int(cols[2])) if int(cols[2]) > 0 else 0
            elif len(cols) == 4 and cols[1] == "0":
                qid, did, gain = cols[0], cols[2], int(float(cols[3]))
            elif len(cols) == 4:
                qid, did, gain = cols[0], cols[1], 1
            else:
                raise ValueError(f"{len(cols)} columns")
            qid, did = str(int(qid)), str(int(did))
        except ValueError as exc:
            raise SixfoldError(f"{rel_path} line {number}: expected 'query doc relevance' ({exc})") from None
        if did not in corpus:
            raise SixfoldError(f"{rel_path} line {number}: document {did} is not in {docs_name}")
        if qid not in queries:
            raise SixfoldError(f"{rel_path} line {number}: query {qid} is not in {queries_name}")
        qrels.setdefault(qid, {})[did] = gain
    return qrels


def load_classic(folder: str | Path) -> RetrievalSet:
    """A SMART collection folder. Judgement files come in three layouts, told apart by their columns:
    ``qid docid code`` (Cranfield; Cleverdon's code 1 = complete answer .. 4 = minimum interest, -1 = no interest;
    gain = 5 - code, -1 is judged not relevant), ``qid docid 0 0.0`` (CISI; gain 1) and ``qid 0 docid rel``
    (MEDLINE, TREC layout). Cranfield's judgements number its queries 1..225 in file order, not by their ``.I``
    numbers (which have gaps); whenever the ``.I`` numbers are not 1..N, query ids are positions in the file.
    """
    folder = Path(folder)
    files = _classic_files(folder)
    if files is None:
        raise SixfoldError(f"SMART folder {folder} has no *.ALL, *.QRY or *.REL files")
    docs_path, queries_path, rel_path = files
    corpus, empty = {}, 0
    for rid, _number, fields in _read_smart(docs_path):
        title, body = fields.get("T", ""), fields.get("W", "")
        if body.startswith(title):  # Cranfield repeats the title as the first words of the text
            body = body[len(title) :].strip()
        empty += not (title or body)  # Cranfield 471 and 995 are empty: kept as ids, never retrievable
        corpus[rid] = {"title": title, "text": body}
    raw_queries = _read_smart(queries_path)
    positional = [int(rid) for rid, _, _ in raw_queries] != list(range(1, len(raw_queries) + 1))
    queries_all = {}
    for position, (rid, number, fields) in enumerate(raw_queries, start=1):
        text = " ".join(v for k, v in fields.items() if k in ("T", "W") and v).strip()
        if not text:
            raise SixfoldError(f"{queries_path} line {number}: query {rid} has no .W text")
        queries_all[str(position) if positional else rid] = text
    qrels = _classic_judgements(rel_path, corpus, queries_all, docs_path.name, queries_path.name)
    qrels = {q: docs for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    if not qrels:
        raise SixfoldError(f"judgement file {rel_path} judges no document relevant")
    notes = [f"{empty} documents are empty (no .T or .W text) and cannot be retrieved"] if empty else []
    if len(qrels) < len(queries_all):
        unjudged = len(queries_all) - len(qrels)
        notes.append(f"{unjudged} of {len(queries_all)} queries have no relevant document and are not scored")
    if positional:
        notes.append(f"query ids are positions in {queries_path.name} (its .I numbers are not 1..N)")
    queries = {q: queries_all[q] for q in sorted(qrels, key=int)}
    return RetrievalSet(folder.name, "classic", corpus, queries, qrels, notes=notes, queries_total=len(queries_all))


# ---- XQuAD-R ------------------------------------------------------------------------------------
def load_xquad_r(path: str | Path) -> RetrievalSet:
    """Every sentence is a document (id ``<paragraph>-<sentence>``); a question's one relevant document is the
    sentence whose span holds ``answer_start``. The language is the file name's (``es.json`` -> es). JSON has no
    useful line numbers, so errors name the article, paragraph and question."""
    return _read_xquad_r(path)[0]


# Per article, per paragraph: the ids of its questions (how two parallel files are lined up).
XQuADLayout = list[list[list[str]]]


def _read_xquad_r(path: str | Path) -> tuple[RetrievalSet, XQuADLayout]:
    """``load_xquad_r``'s set and the file's layout."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"XQuAD-R file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        articles = data["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SixfoldError(f"{path}: not SQuAD-style JSON with a 'data' list ({exc})") from None
    corpus, queries, qrels = {}, {}, {}
    layout: XQuADLayout = []
    paragraph_no = 0
    for a, article in enumerate(articles):
        layout.append([])
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            paragraph_no += 1
            layout[-1].append([])
            where = f"{path} article {a + 1} paragraph {p + 1}"
            sentences, breaks = paragraph.get("sentences"), paragraph.get("sentence_breaks")
            if not sentences or not breaks or len(sentences) != len(breaks):
                raise SixfoldError(f"{where}: no 'sentences' with matching 'sentence_breaks' (not XQuAD-R)")
            ids = []
            for s, sentence in enumerate(sentences):
                doc_id = f"{paragraph_no}-{s + 1}"
                corpus[doc_id] = {"title": "", "text": sentence.lstrip("\ufeff").strip()}
                ids.append(doc_id)
            for qa in paragraph.get("qas", []):
                try:
                    qid, question, start = str(qa["id"]), qa["question"], int(qa["answers"][0]["answer_start"])
                except (KeyError, IndexError, TypeError, ValueError) as exc:
                    raise SixfoldError(f"{where}: question without id, text or answer_start ({exc})") from None
                hit = next((ids[i] for i, (b, e) in enumerate(breaks) if b <= start <= e), None)
                if hit is None:
                    raise SixfoldError(f"{where} question {qid}: answer_start {start} lies in no sentence")
                queries[qid] = question
                qrels[qid] = {hit: 1}
                layout[-1][-1].append(qid)
    if not corpus:
        raise SixfoldError(f"XQuAD-R file {path} holds no paragraphs")
    if not queries:
        raise SixfoldError(f"XQuAD-R file {path} holds no questions")
    codes = [t.lower() for t in re.split(r"[-_.]", path.stem) if len(t) == 2 and t.isalpha()]
    language = codes[-1] if codes else "en"
    notes = [f"language '{language}' (from the file name) picks the BM25 stemmer of a new eval index"]
    data_set = RetrievalSet(
        f"xquad-r-{path.stem}", "xquad-r", corpus, queries, qrels, language=language, notes=notes, queries_total=len(queries)
    )
    return data_set, layout


def load_xquad_r_crosslingual(corpus_path: str | Path, queries_path: str | Path) -> RetrievalSet:
    """Cross-lingual XQuAD-R: the sentences, their ids and the judgments of ``corpus_path``, asked with the
    questions of ``queries_path``, its translation. XQuAD-R files are parallel: the same articles and paragraphs
    in the same order, each with the same question ids (a paragraph's sentences are split per language, so their
    counts differ). That line-up is checked, and a question is judged by the sentence of ``corpus_path`` that holds
    its answer there."""
    for given in (corpus_path, queries_path):
        if Path(given).suffix.lower() != ".json" or Path(given).is_dir():
            raise SixfoldError(f"cross-lingual retrieval reads two parallel XQuAD-R .json files; {given} is not one")
    corpus, corpus_layout = _read_xquad_r(corpus_path)
    asked, asked_layout = _read_xquad_r(queries_path)
    mismatch = _layout_mismatch(corpus_layout, asked_layout)
    if mismatch:
        raise SixfoldError(f"{queries_path} and {corpus_path} are not parallel XQuAD-R files: {mismatch}")
    name = f"xquad-r-{asked.language}-{corpus.language}"
    notes = [f"questions in '{asked.language}' ({queries_path}), sentences in '{corpus.language}' ({corpus_path})"]
    return RetrievalSet(
        name,
        "xquad-r",
        corpus.corpus,
        {qid: asked.queries[qid] for qid in corpus.queries},
        corpus.qrels,
        language=corpus.language,
        notes=notes,
        queries_total=len(corpus.queries),
        query_language=asked.language,
    )


def _counted(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


def _layout_mismatch(corpus: XQuADLayout, asked: XQuADLayout) -> str | None:
    """Where two XQuAD-R layouts first differ (None: they line up): article or paragraph counts, or a
    paragraph's question ids (compared as sets: the order of a paragraph's questions does not matter)."""
    if len(corpus) != len(asked):
        return f"{_counted(len(asked), 'article')} in the questions' file, {len(corpus)} in the sentences' file"
    for a, (corpus_paragraphs, asked_paragraphs) in enumerate(zip(corpus, asked, strict=True)):
        if len(corpus_paragraphs) != len(asked_paragraphs):
            return (
                f"article {a + 1} has {_counted(len(asked_paragraphs), 'paragraph')} in the questions' file, "
                f"{len(corpus_paragraphs)} in the sentences' file"
            )
        for p, (corpus_ids, asked_ids) in enumerate(zip(corpus_paragraphs, asked_paragraphs, strict=True)):
            extra, missing = set(asked_ids) - set(corpus_ids), set(corpus_ids) - set(asked_ids)
            if extra or missing:
                only = [
                    f"{min(ids)} in the {which} file" for ids, which in ((extra, "questions'"), (missing, "sentences'")) if ids
                ]
                return f"article {a + 1} paragraph {p + 1} asks other questions ({', '.join(only)} only)"
    return None


# ---- folder QA sets ----------------------------------------------------------------------------------
@dataclass
class FolderQuestion:
    """One question about a folder: accepted answers and/or a regex; ``sources`` are the files (relative to the
    folder, ``/``-separated) that answer it. No answers and no regex: the folder does not answer it."""

    question: str
    answers: list[str]
    answer_regex: str | None
    sources: list[str]
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.answers) or self.answer_regex is not None


_TSV_HEADER = ("question", "answers", "source")


def load_folder_questions(path: str | Path) -> list[FolderQuestion]:
    """A folder QA set: JSONL (``{"question", "answers": [..], "answer_regex", "source"}``, ``source`` a path, a
    list of paths or null) or TSV (``question<TAB>answers separated by |<TAB>source``; an answers cell written
    ``/regex/`` is a regex; empty answers and source: unanswerable; an optional header row). The format is the
    suffix's (``.jsonl``/``.json``, ``.tsv``/``.tab``), else the first line's (``{`` is JSONL). A bad row is one
    error naming its line."""
    path = Path(path)
    if not path.is_file():
        raise SixfoldError(f"questions file {path} does not exist" if not path.exists() else f"{path} is not a file")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        jsonl = True
    elif suffix in (".tsv", ".tab"):
        jsonl = False
    else:
        jsonl = next((line.lstrip() for line in text.splitlines() if line.strip()), "").startswith("{")
    items = _questions_jsonl(path, text) if jsonl else _questions_tsv(path, text)
    if not items:
        raise SixfoldError(f"questions file {path} holds no questions")
    return items


def _question_row(where: str, number: int, question: object, answers: object, regex: object, source: object) -> FolderQuestion:
    if not isinstance(question, str) or not question.strip():
        raise SixfoldError(f"{where}: no question (expected a non-empty 'question' string)")
    if answers is None:
        answers = []
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise SixfoldError(f"{where}: 'answers' must be a list of non-empty strings")
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            raise SixfoldError(f"{where}: 'answer_regex' must be a non-empty string")
        try:
            re.compile(regex)
        except re.error as exc:
            raise SixfoldError(f"{where}: answer_regex {regex!r} is not a valid regular expression ({exc})") from None
    if source is None:
        sources: list[str] = []
    elif isinstance(source, str):
        sources = [source] if source.strip() else []
    elif isinstance(source, list) and all(isinstance(s, str) and s.strip() for s in source):
        sources = list(source)
    else:
        raise SixfoldError(f"{where}: 'source' must be a file path, a list of paths, or null")
    sources = [s.strip().replace("\\", "/").removeprefix("./") for s in sources]
    item = FolderQuestion(question.strip(), [a.strip() for a in answers], regex, sources, number)
    if item.answerable and not sources:
        raise SixfoldError(f"{where}: an answerable question needs its 'source' (the file that answers it)")
    if not item.answerable and sources:
        raise SixfoldError(f"{where}: a source but no 'answers' or 'answer_regex' (an unanswerable question has source null)")
    return item


def _questions_jsonl(path: Path, text: str) -> list[FolderQuestion]:
    items: list[FolderQuestion] = []
    for number, where, row in iter_jsonl(path, text, invalid="not a question row"):
        if not isinstance(row, dict):
            raise SixfoldError(f"{where}: not a question row (expected a JSON object)")
        unknown = set(row) - {"question", "answers", "answer_regex", "source", "id", "note"}
        if unknown:
            raise SixfoldError(
                f"{where}: unknown field(s) {', '.join(sorted(unknown))} (expected question, answers, answer_regex, source)"
            )
        items.append(
            _question_row(where, number, row.get("question"), row.get("answers"), row.get("answer_regex"), row.get("source"))
        )
    return items


def _questions_tsv(path: Path, text: str) -> list[FolderQuestion]:
    items: list[FolderQuestion] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if not items and tuple(c.strip().lower() for c in cells[:3]) == _TSV_HEADER:
            continue
        where = f"{path} line {number}"
        if len(cells) != 3:
            raise SixfoldError(f"{where}: expected 3 tab-separated columns (question, answers, source), got {len(cells)}")
        question, answers, source = (c.strip() for c in cells)
        regex = None
        if len(answers) > 2 and answers.startswith("/") and answers.endswith("/"):
            regex, answers = answers[1:-1], ""
        items.append(
            _question_row(
                where,
                number,
                question,
                [a for a in (x.strip() for x in answers.split("|")) if a],
                regex,
                [s for s in (x.strip() for x in source.split("|")) if s],
            )
        )
    return items
