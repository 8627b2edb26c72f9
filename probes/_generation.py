"""What the generation probes share: per-item seeds, the prompt form, requests, and text scores.

Pure helpers. The probes (`guided`, `ts_guessing`, `cdd`) build `GenerateRequest`s with these and
hand them to the runner, which caches, de-duplicates, batches and retries them.

- **Seeds.** Every sampled request carries a seed derived from the scan seed, the probe and the
  item, so it is cached and replayed exactly and no two items share a stream.
- **Form.** `chat` (the papers' instructions, as a user message) for instruction-tuned and
  chat-only models, `completion` (a text a base model continues, trailing whitespace dropped)
  otherwise; `auto` picks from the model's capabilities, and a forced form the model cannot
  serve is a reason to skip.
- **Scores.** ROUGE-L F1 (`rouge-score`, stemming off, its own tokeniser) and a token-level edit
  similarity (`rapidfuzz`, 1 - normalised Levenshtein over words), both in [0, 1].
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from contam.models.base import Capabilities, ChatMessage, GenerateRequest

PromptForm = Literal["auto", "chat", "completion"]
Form = Literal["chat", "completion"]

_WORD = re.compile(r"\w+", re.UNICODE)


def item_seed(scan_seed: int, probe: str, item_id: str, salt: str = "") -> int:
    """A stable 31-bit seed for one item's sampled requests (servers take a signed 32-bit int)."""
    blob = f"{scan_seed}\x00{probe}\x00{item_id}\x00{salt}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


def resolve_form(requested: PromptForm, caps: Capabilities) -> tuple[Form | None, str | None]:
    """The form to prompt in, or None and the reason it cannot be served."""
    if requested == "auto":
        return ("chat" if caps.chat_only else "completion"), None
    if requested == "completion" and caps.chat_only:
        return None, "the model is chat-only and a completion-form prompt was asked for"
    if requested == "chat" and not caps.chat:
        return None, "the backend completes prompts only (no chat template); a chat-form prompt was asked for"
    return requested, None


def generate_request(
    form: Form,
    text: str,
    *,
    system: str | None = None,
    max_tokens: int,
    temperature: float = 0.0,
    n: int = 1,
    seed: int | None = None,
    stop: Sequence[str] = (),
) -> GenerateRequest:
    """`text` as a completion prompt, or as the user message of a chat (after `system`, if any)."""
    common: dict[str, Any] = {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "n": n,
        "seed": seed if temperature > 0 else None,  # greedy needs none: one seed-free cache key
        "stop": tuple(stop),
    }
    if form == "completion":
        # No trailing whitespace: tokenizers attach it to the next word (" return", "\n    ",
        # "▁world"), so a prompt ending in it forces a token boundary the model never saw in
        # training, and a base model then mostly ends the document (measured on the testbed: every
        # HumanEval prompt ending in "\n" gave an empty greedy output; stripped, none did).
        return GenerateRequest(prompt=text.rstrip(), **common)
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.append(ChatMessage(role="user", content=text))
    return GenerateRequest(messages=tuple(messages), **common)


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation and whitespace folded: how two texts are compared as words."""
    return " ".join(words(text))


def words(text: str) -> list[str]:
    """The words of `text` after NFKC and lower-casing (punctuation dropped)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of `candidate` against `reference` (0 when either has no word)."""
    if not words(candidate) or not words(reference):
        return 0.0
    return float(_rouge().score(reference, candidate)["rougeL"].fmeasure)


def edit_similarity(candidate: str, reference: str) -> float:
    """1 - normalised Levenshtein distance between the two word sequences (1 = identical)."""
    from rapidfuzz.distance import Levenshtein

    a, b = words(candidate), words(reference)
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a, b))
