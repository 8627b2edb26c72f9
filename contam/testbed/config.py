"""Build arguments and presets: frozen, validated, and hashed into the build's cache key.

The key covers everything that changes the weights: the arguments, the preset's sizes, the
recipe version below, and the content of the benchmark and the clean corpus.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contam.types import content_sha256

# Bump when the recipe (corpus, injection, tokenizer, model or training) changes what a build makes.
TESTBED_VERSION = 1

Form = Literal["verbatim", "question_only", "rewrapped", "canonical_dump", "with_metadata"]
FORMS: tuple[Form, ...] = ("verbatim", "question_only", "rewrapped", "canonical_dump", "with_metadata")


class Preset(BaseModel):
    """Model size, corpus budget and training length. Sizes were chosen by measurement (card.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    vocab_size: int = Field(gt=256, description="byte-level BPE vocabulary, special tokens included")
    hidden: int
    layers: int
    heads: int
    intermediate: int
    seq_len: int = Field(description="training block length in tokens")
    max_positions: int = Field(description="max_position_embeddings in the model config")
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    clean_bytes: int = Field(description="characters of clean corpus (stdlib and/or GSM8K train)")
    max_items: int = Field(description="benchmark items sampled (seeded) before splitting; 0 = all")
    threads: int = Field(default=2, description="torch threads, fixed: same args give the same weights")


PRESETS: dict[str, Preset] = {
    "ci": Preset(
        name="ci",
        vocab_size=4096,
        hidden=256,
        layers=4,
        heads=4,
        intermediate=688,
        seq_len=256,
        max_positions=1024,
        batch_size=16,
        steps=200,
        lr=3e-3,
        warmup_steps=15,
        clean_bytes=600_000,
        max_items=164,
    ),
    "bench": Preset(
        name="bench",
        vocab_size=4096,
        hidden=256,
        layers=4,
        heads=4,
        intermediate=688,
        seq_len=256,
        max_positions=1024,
        batch_size=16,
        steps=480,
        lr=3e-3,
        warmup_steps=30,
        clean_bytes=1_200_000,
        max_items=400,
    ),
}


class BuildArgs(BaseModel):
    """What `contam testbed build` was asked for. `steps` overrides the preset (tests use fewer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    benchmark: str
    exposures: tuple[int, ...] = (16, 4, 1, 0)
    seed: int = 0
    preset: str = "ci"
    form: Form = "verbatim"
    steps: int | None = Field(default=None, gt=0)

    @field_validator("exposures")
    @classmethod
    def _exposures(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 0 for n in value):
            raise ValueError("exposure counts must be >= 0")
        if len(set(value)) != len(value):
            raise ValueError("exposure counts must be distinct (one partition each)")
        if 0 not in value:
            raise ValueError("exposures must include 0: the unseen partition is the ground-truth reference")
        if len(value) < 2:
            raise ValueError("exposures need at least one seen count besides 0")
        return tuple(sorted(value, reverse=True))

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"unknown preset {value!r}; one of {', '.join(PRESETS)}")
        return value

    @property
    def resolved_preset(self) -> Preset:
        base = PRESETS[self.preset]
        return base if self.steps is None else base.model_copy(update={"steps": self.steps})

    def key(self, benchmark_sha: str, corpus_sha: str) -> str:
        """Content hash naming the build in the cache."""
        payload = json.dumps(
            {
                "version": TESTBED_VERSION,
                "args": self.model_dump(mode="json"),
                "preset": self.resolved_preset.model_dump(mode="json"),
                "benchmark": benchmark_sha,
                "corpus": corpus_sha,
            },
            sort_keys=True,
        )
        return content_sha256(payload)[:20]


def partition_name(exposures: int) -> str:
    return "unseen" if exposures == 0 else f"seen_x{exposures}"
