"""The ``sixfold`` command line: ``parser`` reads the arguments, one module per command group calls the Engine (or
``sixfold.eval``, or a tuner) and ``render`` prints the result.

Every user-fixable failure is one ``error: ...`` line on stderr and a non-zero exit, never a traceback
(set SIXFOLD_DEBUG=1 to see one). No module here imports torch or transformers at import time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from sixfold.cli.answer import cmd_ask, cmd_classify, cmd_complete
from sixfold.cli.evaluate import cmd_eval
from sixfold.cli.index import cmd_embed, cmd_index, cmd_search, cmd_status
from sixfold.cli.models import cmd_models
from sixfold.cli.parser import build_parser
from sixfold.cli.serve import cmd_serve
from sixfold.cli.tune import cmd_tune
from sixfold.core import config
from sixfold.core.errors import SixfoldError

__all__ = ["COMMANDS", "build_parser", "main"]

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

COMMANDS: dict[str, Callable[..., int]] = {
    "index": cmd_index,
    "search": cmd_search,
    "embed": cmd_embed,
    "status": cmd_status,
    "ask": cmd_ask,
    "classify": cmd_classify,
    "complete": cmd_complete,
    "tune": cmd_tune,
    "models": cmd_models,
    "eval": cmd_eval,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (2: a bad argument, already reported in one line)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or argparse's error (2): a status to return, also when called in-process
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return COMMANDS[args.command](args)
    except SixfoldError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the index keeps its last committed state; run the command again to finish\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, the traceback on request
        if config.debug():
            raise
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {exc} (set SIXFOLD_DEBUG=1 for details)\n")
        return 1
