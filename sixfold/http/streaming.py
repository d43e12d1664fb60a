"""Server-sent events fed by a generating thread: what the streamed completions and chat completions share.

The 200 status line of a stream is sent before generation ends, so an error after it is an event in OpenAI's
error shape, not a status; and when the client stops reading, the generating thread is told (``gone``) so the model
stops at its next token.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator

from sixfold.core.errors import SixfoldError
from sixfold.http.errors import ApiError

DONE = "data: [DONE]\n\n"


def error_event(error: dict) -> str:
    return f"data: {json.dumps({'error': error})}\n\n"


def stream_from_thread(work: Callable[[Callable[[str], None], Callable[[], bool]], None]) -> Iterator[str]:
    """Run ``work(put, gone)`` in a thread and yield each event it ``put``s, then ``[DONE]``; an error it raises
    becomes an error event. ``gone()`` is True once the client has stopped reading."""
    events: queue.Queue = queue.Queue()
    gone = threading.Event()

    def run() -> None:
        try:
            work(events.put, gone.is_set)
        except ApiError as exc:
            events.put(error_event({"message": exc.message, "type": exc.kind, "param": exc.param, "code": exc.code}))
        except Exception as exc:
            message = str(exc) if isinstance(exc, SixfoldError) else f"internal error: {type(exc).__name__}"
            events.put(error_event({"message": message, "type": "invalid_request_error", "param": None, "code": None}))
        finally:
            events.put(None)

    threading.Thread(target=run, daemon=True).start()
    try:
        while (event := events.get()) is not None:
            yield event
        yield DONE
    finally:
        gone.set()
