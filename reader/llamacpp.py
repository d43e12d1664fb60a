"""A GGUF language model run by llama.cpp (``llama-cpp-python``): the CPU runtime for quantised models.

transformers can read a GGUF file only by dequantising it to float (about 1 token/s for a 1.5B model on this CPU);
llama.cpp runs the quantised weights as they are (9 tokens/s on one core). The class offers what the readers and
the server use of a language model (``reader.llm.LanguageModel``), plus the probability of each generated token,
recorded by a logits processor (llama-cpp only returns log-probabilities when it keeps the logits of every
position, gigabytes for a 150k vocabulary), which the answer confidence uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sixfold.core import config
from sixfold.core.device import usable_cores
from sixfold.core.errors import SixfoldError
from sixfold.core.loading import quiet_loading
from sixfold.core.models import ResolvedModel
from sixfold.reader.llm import check_options, check_window
from sixfold.reader.types import Completion

CONTEXT = 4096  # tokens of context: passages, question and answer; more costs memory for nothing a reader needs


def available() -> bool:
    """Whether llama-cpp-python is installed (imported lazily: it loads a shared library)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def render_chat(template: str, messages: list[dict], bos: str = "", eos: str = "") -> str:
    """A chat template (Jinja, as stored in the GGUF file) applied to ``messages``, ready for the reply."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str):
        raise SixfoldError(f"the model's chat template refused the messages: {message}")

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos, tools=None
    )


class _TokenProbabilities:
    """A llama-cpp logits processor that records the probability of each token the sampler picked.

    Called with the logits before each new token; the token picked from the previous call's logits is then the last
    input id, so each call scores the previous step."""

    def __init__(self, prompt_tokens: int) -> None:
        self.start = prompt_tokens
        self.probabilities: list[float] = []
        self._last: np.ndarray | None = None

    def __call__(self, input_ids, scores):
        if self._last is not None and len(input_ids) > self.start:
            self.probabilities.append(float(self._last[int(input_ids[-1])]))
        shifted = np.exp(scores - scores.max())
        self._last = shifted / shifted.sum()
        return scores

    def finish(self, last_token: int | None) -> list[float]:
        if self._last is not None and last_token is not None:
            self.probabilities.append(float(self._last[last_token]))
            self._last = None
        return self.probabilities


class LlamaCppLM:
    """A GGUF instruction model on llama.cpp; one generation at a time (callers hold the model's lock)."""

    backend = "llama.cpp"

    def __init__(self, model: ResolvedModel, device: str) -> None:
        if not available():
            raise SixfoldError(
                "llama-cpp-python is not installed: pip install llama-cpp-python (it builds with gcc and cmake, a few "
                "minutes once; see the README)"
            )
        from llama_cpp import Llama

        assert model.gguf_file, "LlamaCppLM takes a GGUF model"
        path = Path(model.path) / model.gguf_file
        self.name, self.device = model.name, device
        threads = config.lm_threads() or usable_cores()
        lora = None
        if model.adapter:
            from sixfold.reader.llm import ADAPTER_GGUF

            lora = Path(model.adapter) / ADAPTER_GGUF
            if not lora.is_file():
                raise SixfoldError(f"tuned generator {model.name} has no llama.cpp adapter ({lora} is missing)")
        # llama.cpp prints a line per adapted weight while it loads an adapter, whatever the verbosity: silenced
        from llama_cpp._utils import suppress_stdout_stderr

        with quiet_loading("language model", model.name, "llama_cpp"), suppress_stdout_stderr(disable=lora is None):
            self.llama = Llama(
                model_path=str(path),
                lora_path=str(lora) if lora else None,
                n_ctx=CONTEXT,
                n_threads=threads,
                n_gpu_layers=-1 if device.startswith("cuda") else 0,
                verbose=False,
            )
        self.window = min(CONTEXT, int(self.llama.n_ctx()))
        metadata = self.llama.metadata
        self.template = metadata.get("tokenizer.chat_template")
        self._bos = self._special(metadata, "tokenizer.ggml.bos_token_id")
        self._eos = self._special(metadata, "tokenizer.ggml.eos_token_id")

    def _special(self, metadata: dict, key: str) -> str:
        if key not in metadata:
            return ""
        return self.llama.detokenize([int(metadata[key])], special=True).decode("utf-8", "replace")

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def truncate(self, text: str, tokens: int) -> str:
        """``text`` cut to its first ``tokens`` tokens."""
        return self.llama.detokenize(self.tokenize(text)[:tokens]).decode("utf-8", "ignore")

    def chat(self, messages: list[dict]) -> str:
        """The prompt for a chat (``[{"role", "content"}]``) in the model's own template."""
        if not self.template:
            return "\n\n".join(m["content"] for m in messages) + "\n"
        return render_chat(self.template, messages, self._bos, self._eos)

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
        """Like ``CausalLM.complete``; the Completion also carries each generated token's probability."""
        from llama_cpp import LogitsProcessorList

        check_options(prompt, max_tokens, temperature)
        ids = self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        check_window(len(ids), max_tokens, self.window)
        if seed is not None:
            # Reading the prompt again from scratch: a prompt prefix reused from the cache gives logits that differ
            # in the last bits, and a seeded sample must not depend on what was asked before.
            self.llama.reset()
        recorder = _TokenProbabilities(len(ids))
        stream: Any = self.llama.create_completion(
            ids,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=0 if temperature > 0 else 40,
            min_p=0.0,
            repeat_penalty=1.0,
            stop=[s for s in (stop or []) if s],
            seed=seed,
            stream=True,
            logits_processor=LogitsProcessorList([recorder]),
        )
        pieces: list[str] = []
        finish, count = "length", 0
        try:
            for chunk in stream:
                choice: dict = chunk["choices"][0]
                if choice.get("text"):
                    pieces.append(choice["text"])
                    count += 1
                    if on_text:
                        on_text(choice["text"])
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if should_stop is not None and should_stop():
                    finish = "interrupted"
                    break
        finally:
            stream.close()  # ends generation when the caller stopped early
        text = "".join(pieces)
        generated = self.llama.input_ids[len(ids) : self.llama.n_tokens].tolist()
        last = generated[-1] if generated else None
        probabilities = recorder.finish(last if len(recorder.probabilities) < len(generated) else None)
        return Completion(
            prompt=prompt,
            text=text,
            finish_reason=finish,
            prompt_tokens=len(ids),
            completion_tokens=len(generated) or count,
            model=self.name,
            token_probabilities=probabilities,
        )
