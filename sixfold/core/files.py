"""Reading the line-oriented data files users hand in (JSONL examples, pairs, QA rows, BEIR collections), with errors
that name the file and the line."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from sixfold.core.errors import SixfoldError

# Lines end at \n, \r\n or \r only: str.splitlines() also splits at U+2028, U+0085 and other characters that JSON
# strings may hold unescaped (json.dumps(ensure_ascii=False) writes them), which would cut a valid row in two.
_LINE_END = re.compile(r"\r\n?|\n")


class JsonlRow(NamedTuple):
    """One parsed line: its 1-based number, ``"<path> line N"`` for error messages, and the JSON value."""

    number: int
    where: str
    row: object


def iter_jsonl(path: str | os.PathLike[str], text: str | None = None, *, invalid: str = "not valid JSON") -> Iterator[JsonlRow]:
    """Each non-blank line of a JSONL file, parsed, in order; a line that is not JSON is one error,
    ``<path> line N: <invalid> (why)``.

    ``text`` is the file's content when the caller has read it already (to sniff its format); otherwise the file is
    read as UTF-8. A leading byte-order mark (files saved by Excel or Notepad) is skipped either way, so it does not
    make line 1 invalid. The value of a line may be any JSON; callers check that it is the object they expect."""
    if text is None:
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    for number, line in enumerate(_LINE_END.split(text.removeprefix("\ufeff")), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SixfoldError(f"{where}: {invalid} ({exc.msg})") from None
        yield JsonlRow(number, where, row)
