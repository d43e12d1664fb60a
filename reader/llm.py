"""The local language model: a GGUF file on llama.cpp (``reader.llamacpp``) on a CPU, else transformers.

``load_llm`` picks the runtime: llama.cpp runs a quantised GGUF file as it is and is the CPU default; transformers
runs model folders, and GGUF files on CUDA or where llama-cpp-python is not installed. transformers reads GGUF by
dequantising it, which takes a while; the result is saved once under ``$SIXFOLD_CACHE`` (default
``~/.cache/sixfold``) so later loads are plain safetensors loads.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Protocol

from sixfold.core import config
from sixfold.core.config import cache_dir
from sixfold.core.errors import SixfoldError
from sixfold.core.loading import load_model, quiet_loading
from sixfold.core.models import ResolvedModel
from sixfold.reader.types import Completion


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class LanguageModel(Protocol):
    """What the readers, ``complete`` and the server use of a language model (both runtimes offer it)."""

    name: str
    device: str
    window: int
    backend: str

    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, tokens: int) -> str: ...

    def chat(self, messages: list[dict]) -> str: ...

    def chat_prompt(self, system: str, user: str) -> str: ...

    def complete(
        self,
        prompt: str,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_p: float = 0.95,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion: ...


class CausalLM:
    """A language model on transformers (a model folder, or a GGUF file dequantised to float)."""

    backend = "transformers"

    def __init__(self, model: ResolvedModel, device: str) -> None:
        self.name = model.name
        self.device = device
        self.tokenizer, self.model = load_causal_lm(model)
        if model.adapter:
            self.model = with_adapter(self.model, model)
        self.model.to(device).eval()
        config = self.model.config
        self.window = int(getattr(config, "max_position_embeddings", 2048) or 2048)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, tokens: int) -> str:
        """``text`` cut to its first ``tokens`` tokens."""
        return self.tokenizer.decode(self.tokenizer(text, add_special_tokens=False)["input_ids"][:tokens])

    def chat(self, messages: list[dict]) -> str:
        """The prompt for a chat (``[{"role", "content"}]``) in the model's own template."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def chat_prompt(self, system: str, user: str) -> str:
        return self.chat([{"role": "system", "content": system}, {"role": "user", "content": user}])

    def complete(
        self,
        prompt: str,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        top_p: float = 0.95,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """``should_stop``: asked before each new token; True ends generation there (finish_reason "interrupted"),
        e.g. when a request's time limit has passed."""
        pieces = []
        state: dict = {}  # filled by _run: prompt/completion token counts and the finish reason
        for piece in self._run(prompt, max_tokens, temperature, stop, top_p, seed, state, should_stop):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        text = "".join(pieces)
        return Completion(
            prompt=prompt,
            text=text,
            finish_reason=state["finish"],
            prompt_tokens=state["prompt_tokens"],
            completion_tokens=state["completion_tokens"],
            model=self.name,
        )

    def _run(self, prompt, max_tokens, temperature, stop, top_p, seed, state: dict, should_stop=None) -> Iterator[str]:
        """Generate in a thread and yield the text as it comes, cut before the first stop string; fills ``state``."""
        import torch
        from transformers import TextIteratorStreamer

        check_options(prompt, max_tokens, temperature)
        stop = [s for s in (stop or []) if s]
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        prompt_tokens = state["prompt_tokens"] = int(inputs["input_ids"].shape[1])
        check_window(prompt_tokens, max_tokens, self.window)
        if seed is not None:
            torch.manual_seed(seed)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **inputs,
            max_new_tokens=max_tokens,
            streamer=streamer,
            do_sample=temperature > 0,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=top_p)
        if stop:
            kwargs.update(stop_strings=stop, tokenizer=self.tokenizer)
        interrupted = threading.Event()
        if should_stop is not None:
            kwargs.update(stopping_criteria=_stopping_when(should_stop, interrupted))
        output: dict = {}
        thread = threading.Thread(target=self._generate, args=(kwargs, streamer, output), daemon=True)
        thread.start()
        text, emitted, stopped = yield from _until_stop(streamer, stop)
        thread.join()
        if "error" in output:
            raise SixfoldError(f"generation failed: {output['error']}")
        if not stopped and len(text) > emitted:
            yield text[emitted:]
        new_tokens = int(output["ids"].shape[1]) - prompt_tokens
        state["completion_tokens"] = new_tokens
        eos = self.tokenizer.eos_token_id
        ended = new_tokens < max_tokens or (eos is not None and int(output["ids"][0, -1]) == eos)
        state["finish"] = "interrupted" if interrupted.is_set() and not stopped else "stop" if stopped or ended else "length"

    def _generate(self, kwargs: dict, streamer, output: dict) -> None:
        """``model.generate`` (run in a thread); its ids, or the error surfaced in the caller's thread, go to ``output``."""
        import torch

        try:
            with torch.inference_mode():
                output["ids"] = self.model.generate(**kwargs)
        except Exception as exc:
            output["error"] = exc
            streamer.end()


ADAPTER_DIR = "adapter"  # in a generator@N folder: the LoRA weights as peft saves them (transformers runtime)
ADAPTER_GGUF = "adapter.gguf"  # the same weights as a llama.cpp LoRA adapter (GGUF runtime)


def load_causal_lm(model: ResolvedModel, train: bool = False):
    """(tokenizer, model) of a language model on transformers; a GGUF file is dequantised once and the result kept
    under ``$SIXFOLD_CACHE`` so later loads are plain safetensors loads. ``train``: float32 weights (the tuner's master
    copy) whatever the folder stores; else the library's default dtype, as served before."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its dequantising and saving bars: sixfold says what it loads
    folder, gguf = model.path, model.gguf_file
    cached = cache_dir() / "models" / _safe(f"{Path(model.path).name}-{gguf}")
    with quiet_loading("language model", model.name, "transformers"):
        if gguf and (cached / "config.json").is_file():
            folder, gguf = str(cached), None
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf, local_files_only=True)
        precision = {"dtype": torch.float32} if train else {}
        lm = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, local_files_only=True, **precision)
    if gguf:
        _save_dequantised(lm, tokenizer, cached)
    return tokenizer, lm


def with_adapter(lm, model: ResolvedModel):
    """``lm`` with a tuned generator's LoRA weights merged in (the same arithmetic llama.cpp does with the adapter)."""
    from peft import PeftModel

    with quiet_loading("tuned generator", model.name, "peft"):
        return PeftModel.from_pretrained(lm, str(Path(model.adapter or "") / ADAPTER_DIR)).merge_and_unload()


def _save_dequantised(lm, tokenizer, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        # The weights are already dequantised to float: save them as a plain model.
        lm.hf_quantizer = None
        lm.is_quantized = False
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        lm.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except (OSError, ValueError, AttributeError):  # a read-only home is fine: we load the GGUF next time too
        shutil.rmtree(tmp, ignore_errors=True)


def check_options(prompt: str, max_tokens: int, temperature: float) -> None:
    """The generation options both runtimes refuse, as one error line each."""
    if not prompt:
        raise SixfoldError("empty prompt")
    if max_tokens <= 0:
        raise SixfoldError(f"max tokens must be positive, got {max_tokens}")
    if temperature < 0:
        raise SixfoldError(f"temperature must be >= 0, got {temperature}")


def check_window(prompt_tokens: int, max_tokens: int, window: int) -> None:
    if prompt_tokens + max_tokens > window:
        raise SixfoldError(f"prompt of {prompt_tokens} tokens + {max_tokens} new tokens exceeds the model window of {window}")


def _stopping_when(should_stop: Callable[[], bool], interrupted: threading.Event):
    """A stopping criterion asking ``should_stop()`` before each new token; once True, ``interrupted`` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Asked(StoppingCriteria):
        def __call__(self, input_ids, scores, **_kwargs):
            if should_stop():
                interrupted.set()
            return torch.full((input_ids.shape[0],), interrupted.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Asked()])


def _until_stop(streamer, stop: list[str]) -> Generator[str, None, tuple[str, int, bool]]:
    """Yield the streamed text, holding back a tail that may begin a stop string, up to the first stop string.

    Returns (text so far, how much of it was yielded, whether a stop string ended it); after a stop the rest of the
    stream is drained so the generating thread can finish."""
    text, emitted, hold = "", 0, max((len(s) for s in stop), default=1) - 1
    for piece in streamer:
        text += piece
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            if cut > emitted:
                yield text[emitted:cut]
            for _ in streamer:  # drain so the generating thread can finish
                pass
            return text, cut, True
        safe = len(text) - hold
        if safe > emitted:
            yield text[emitted:safe]
            emitted = safe
    return text, emitted, False


def runtime(model: ResolvedModel, device: str) -> str:
    """``llama.cpp`` for a GGUF file on a CPU when llama-cpp-python is installed (or ``SIXFOLD_LM_RUNTIME`` says
    so), else ``transformers``."""
    from sixfold.reader import llamacpp

    forced = config.lm_runtime()
    if forced:
        return forced
    if model.gguf_file and device == "cpu" and llamacpp.available():
        return "llama.cpp"
    return "transformers"


def _build(model: ResolvedModel, device: str) -> LanguageModel:
    if runtime(model, device) == "llama.cpp":
        from sixfold.reader.llamacpp import LlamaCppLM

        return LlamaCppLM(model, device)
    return CausalLM(model, device)


def load_llm(spec: str | ResolvedModel) -> LanguageModel:
    """The language model by name, folder or GGUF file, loaded once per process on its runtime (``runtime``)."""
    return load_model("language", spec, _build)
