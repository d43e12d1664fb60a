"""The one error type users see.

Every failure a user can fix (bad path, wrong model, corrupt index, bad query) is raised as
``SixfoldError`` with a message written for them; the CLI prints it on one line and exits non-zero.
It lives in the lowest package so that every layer can raise it without importing ``sixfold``.
"""


class SixfoldError(Exception):
    """A problem the user can fix, with a message meant to be shown as is."""


def first_line(exc: BaseException) -> str:
    """The first line of a library's error (DuckDB, FAISS and tantivy errors run over several), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
