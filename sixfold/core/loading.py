"""One cache of loaded models for every role (embedder, reranker, reader, language model).

Models are large and slow to load, so each (role's class, model folder, device) is loaded once per process and
shared; a lock keeps two threads (the HTTP server) from loading the same model twice.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sixfold.core.device import choose_device
from sixfold.core.errors import SixfoldError
from sixfold.core.models import ResolvedModel, resolve_model

T = TypeVar("T")
MAX_LOADED = 8  # models kept; the least recently used one is dropped past this

_loaded: OrderedDict[tuple, object] = OrderedDict()
_lock = threading.Lock()


def load_model(role: str, spec: str | ResolvedModel, build: Callable[[ResolvedModel, str], T], device: str | None = None) -> T:
    """``build(model, device)`` once per process for a model spec (resolved with ``resolve_model``) or a resolved model."""
    model = spec if isinstance(spec, ResolvedModel) else resolve_model(spec, role=role)
    key = (build, model, device or choose_device())
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]  # type: ignore[return-value]
        loaded = build(model, key[2])
        _loaded[key] = loaded
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
        return loaded


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Around a model library's loading or training: its warnings ignored and its logger (``logger``) set to ERROR.
    The level is left at ERROR afterwards: the library's later log lines are no more the user's to act on."""
    logging.getLogger(logger).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def quiet_loading(what: str, name: str, logger: str) -> Iterator[None]:
    """Around a model's ``from_pretrained``: ``quiet``, and any failure to load turned into one error line,
    ``cannot load WHAT NAME: why``."""
    try:
        with quiet(logger):
            yield
    except SixfoldError:
        raise
    except Exception as exc:  # any failure to load is the model folder being wrong
        raise SixfoldError(f"cannot load {what} {name}: {type(exc).__name__}: {exc}") from None


def clear() -> None:
    """Forget every loaded model (tests; freeing memory)."""
    with _lock:
        _loaded.clear()
