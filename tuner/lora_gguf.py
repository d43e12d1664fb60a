"""A peft LoRA adapter written as a llama.cpp LoRA adapter (GGUF), so a tuned GGUF model stays servable by llama.cpp.

llama.cpp applies an adapter at load time on top of the quantised base weights (``Llama(lora_path=...)``):
``W x + scale * B (A x)`` with ``scale = alpha / r``, which is peft's LoRA arithmetic. The file holds, for each
adapted weight, ``<gguf tensor name>.lora_a`` (peft's ``lora_A``, r x in) and ``.lora_b`` (``lora_B``, out x r) in
float32, and the keys llama.cpp checks: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and the base model's architecture. Tensor names come from the ``gguf`` package's own map
(the one llama.cpp's ``convert_lora_to_gguf.py`` uses); we write the file ourselves because that script ships only
in llama.cpp's source tree, not in any installed package.

Only weights llama.cpp stores as transformers does are adapted: llama-family GGUF files keep q and k permuted for
their rotary layout, so the tuner leaves q and k alone (``tuner.generator.TARGETS``).
"""

from __future__ import annotations

from pathlib import Path

from sixfold.core.errors import SixfoldError


def gguf_architecture(gguf_path: str | Path) -> tuple[str, int]:
    """(architecture, number of blocks) recorded in a GGUF model file."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    arch_field = reader.fields.get("general.architecture")
    if arch_field is None:
        raise SixfoldError(f"{gguf_path} records no architecture")
    arch = bytes(arch_field.parts[-1]).decode()
    blocks = reader.fields.get(f"{arch}.block_count")
    if blocks is None:
        raise SixfoldError(f"{gguf_path} records no block count")
    return arch, int(blocks.parts[-1][0])


def write_lora_gguf(peft_model, base_gguf: str | Path, target: str | Path) -> int:
    """Write ``peft_model``'s LoRA weights (one adapter, named "default") as a llama.cpp adapter for the GGUF model
    ``base_gguf``; returns how many weights it adapts."""
    import gguf
    import numpy as np

    arch, blocks = gguf_architecture(base_gguf)
    known = {name: value for value, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in known:
        raise SixfoldError(f"the gguf package does not know the architecture '{arch}' of {base_gguf}")
    names = gguf.get_tensor_name_map(known[arch], blocks)
    config = peft_model.peft_config["default"]
    state = peft_model.state_dict()
    tensors = []
    for key, a in state.items():
        if ".lora_A." not in key:
            continue
        module = key.split("base_model.model.", 1)[-1].split(".lora_A.", 1)[0]
        name = names.get_name(module)
        if name is None:
            raise SixfoldError(f"no llama.cpp name for the adapted weight {module} ({arch})")
        b = state[key.replace(".lora_A.", ".lora_B.")]
        tensors.append(((f"{name}.weight.lora_a", a), (f"{name}.weight.lora_b", b)))
    if not tensors:
        raise SixfoldError("the model has no LoRA weights to write")
    writer = gguf.GGUFWriter(str(target), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(config.lora_alpha))
    for pair in tensors:
        for name, weight in pair:
            writer.add_tensor(name, np.ascontiguousarray(weight.detach().float().cpu().numpy()))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(tensors)
