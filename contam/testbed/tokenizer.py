"""Byte-level BPE tokenizer trained on the clean corpus only.

Benchmark items are left out of tokenizer training on purpose: merges learned from the seen
partitions would make them compress better than unseen ones, a signal outside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contam.testbed.corpus import Document

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (BOS, EOS, PAD)


def train_tokenizer(documents: Sequence[Document], vocab_size: int, out_dir: Path) -> Any:
    """Train, save into `out_dir` as a transformers fast tokenizer, and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((d.text for d in documents), trainer=trainer, length=len(documents))
    bos_id = tok.token_to_id(BOS)
    # Encoding with special tokens prepends BOS, as Llama tokenizers do, so hf and vLLM agree.
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, bos_id)])
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # untyped upstream
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=1 << 30
    )
    fast.save_pretrained(str(out_dir))
    return fast
