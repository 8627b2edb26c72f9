"""Pack the training documents into blocks and train a small Llama on them, deterministically.

Determinism on CPU comes from fixed seeds, a fixed thread count and deterministic algorithms;
the same arguments then give bit-identical weights on one machine.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contam.testbed.config import Preset
from contam.testbed.corpus import Document


@dataclass(frozen=True, slots=True)
class TrainStats:
    parameters: int
    tokens_in_corpus: int
    blocks: int
    tokens_trained: int
    epochs: float
    first_loss: float
    final_loss: float
    seconds: float
    tokens_per_second: float


ProgressFn = Callable[[int, int, float], None]


def set_determinism(seed: int, threads: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pack(documents: Sequence[Document], tokenizer: Any, seq_len: int, seed: int) -> tuple[Any, int]:
    """Shuffle documents (seeded), encode each as BOS text EOS, concatenate, cut into blocks."""
    import torch

    order = list(documents)
    random.Random(f"contam-testbed-pack:{seed}").shuffle(order)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    encoded = tokenizer([d.text for d in order], add_special_tokens=False)["input_ids"]
    stream: list[int] = []
    for ids in encoded:
        stream.append(bos)
        stream.extend(ids)
        stream.append(eos)
    n_blocks = len(stream) // seq_len
    # The tail shorter than a block is dropped; it is under one block of the whole stream.
    blocks = torch.tensor(stream[: n_blocks * seq_len], dtype=torch.long).view(n_blocks, seq_len)
    return blocks, len(stream)


def build_model(preset: Preset, tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=preset.hidden,
        intermediate_size=preset.intermediate,
        num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads,
        num_key_value_heads=preset.heads,
        max_position_embeddings=preset.max_positions,
        # The tokenizer's real ids: LlamaConfig's defaults (eos=2) are ordinary tokens in a new vocab.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)  # type: ignore[no-untyped-call]  # untyped upstream


def _lr(step: int, preset: Preset) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < preset.warmup_steps:
        return preset.lr * (step + 1) / preset.warmup_steps
    progress = (step - preset.warmup_steps) / max(1, preset.steps - preset.warmup_steps)
    return preset.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    documents: Sequence[Document],
    tokenizer: Any,
    preset: Preset,
    seed: int,
    out_dir: Path,
    log_path: Path,
    progress: ProgressFn | None = None,
) -> TrainStats:
    import torch
    from transformers import GenerationConfig

    set_determinism(seed, preset.threads)
    blocks, n_tokens = pack(documents, tokenizer, preset.seq_len, seed)
    model = build_model(preset, tokenizer)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    optim = torch.optim.AdamW(model.parameters(), lr=preset.lr, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(blocks.shape[0], generator=gen)
    cursor = 0
    losses: list[float] = []
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        for step in range(preset.steps):
            if cursor + preset.batch_size > order.numel():  # next epoch, new order
                order = torch.randperm(blocks.shape[0], generator=gen)
                cursor = 0
            batch = blocks[order[cursor : cursor + preset.batch_size]]
            cursor += preset.batch_size
            for group in optim.param_groups:
                group["lr"] = _lr(step, preset)
            loss = model(input_ids=batch, labels=batch).loss
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            value = float(loss.detach())
            losses.append(value)
            if step == 0 or (step + 1) % 10 == 0 or step == preset.steps - 1:
                elapsed = time.perf_counter() - start
                log.write(json.dumps({"step": step, "loss": round(value, 5), "lr": _lr(step, preset),
                                      "seconds": round(elapsed, 2)}) + "\n")
                log.flush()
                if progress is not None:
                    progress(step + 1, preset.steps, value)
    seconds = time.perf_counter() - start
    model.eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    GenerationConfig(  # type: ignore[no-untyped-call]  # untyped upstream
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(str(out_dir))
    trained = preset.steps * preset.batch_size * preset.seq_len
    tail = losses[-20:]
    return TrainStats(
        parameters=params,
        tokens_in_corpus=n_tokens,
        blocks=int(blocks.shape[0]),
        tokens_trained=trained,
        epochs=trained / max(1, blocks.numel()),
        first_loss=losses[0],
        final_loss=sum(tail) / len(tail),
        seconds=seconds,
        tokens_per_second=trained / seconds if seconds > 0 else 0.0,
    )
