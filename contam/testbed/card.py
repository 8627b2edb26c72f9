"""card.md: a one-page description of a testbed build, with its sanity figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contam.testbed.sanity import Sanity
from contam.types import Partition


def render_card(
    record: Mapping[str, Any], parts: Mapping[int, Partition], heldout: Partition, pool: int
) -> str:
    """`pool`: the benchmark items the split drew from; `heldout`: those it did not draw."""
    args, preset, train = record["args"], record["preset"], record["train"]
    corpus, secs = record["corpus"], record["seconds"]
    figures = Sanity.model_validate(record["sanity"])
    part_lines = "\n".join(
        f"| `{p.name}` | {n} | {len(p)} |" for n, p in parts.items()
    )
    return f"""# Testbed `{record["key"]}`

A small Llama trained from scratch with known contamination: benchmark `{record["benchmark"]["name"]}`
split at random (seed {args["seed"]}) into one partition per exposure count; each seen partition was
injected into the training text in form `{args["form"]}` as many times as its name says.
`truth.json` maps every item id to its exposure count.

| partition | exposures | items |
|---|---|---|
{part_lines}

{_heldout_line(heldout, pool, preset["max_items"])}

## Training

- clean corpus: {corpus["chars"]:,} characters from {", ".join(corpus["sources"])}
  ({corpus["documents"]} documents); {record["injected_documents"]:,} injected documents
- tokenizer: byte-level BPE, {preset["vocab_size"]:,} entries, trained on the clean corpus only
- model: Llama, {preset["layers"]} layers, hidden {preset["hidden"]}, {preset["heads"]} heads,
  {train["parameters"]:,} parameters, float32
- preset `{preset["name"]}`: {preset["steps"]} steps of {preset["batch_size"]}×{preset["seq_len"]} tokens,
  AdamW lr {preset["lr"]}, {train["epochs"]:.2f} passes over {train["tokens_in_corpus"]:,} tokens
- loss {train["first_loss"]:.3f} → {train["final_loss"]:.3f} (mean of the last 20 steps);
  log in `train_log.jsonl`
- time: tokenizer {secs["tokenizer"]}s, training {secs["train"]}s
  ({train["tokens_per_second"]:,.0f} tokens/s), sanity {secs["sanity"]}s, total {secs["total"]}s

## Sanity figures (transformers, directly)

AUROC of each seen partition against `unseen`, by mean token log-likelihood (loss), Min-K% and
Min-K%++ (k = {figures.k}); 0.5 is chance.

```
{figures.table()}
```

## Use

```bash
contam scan benchmark.jsonl --model hf:model --partition seen_x{parts and max(parts)} --reference unseen
```
"""


def _heldout_line(heldout: Partition, pool: int, max_items: int) -> str:
    if not len(heldout):
        return (f"No held-out pool: the split drew all {pool} benchmark items (at most {max_items}), "
                "so no `heldout.jsonl` is written.")
    return (f"Held out: the {len(heldout)} of {pool} benchmark items the split did not draw (at most "
            f"{max_items}) are in `heldout.jsonl`, partition `heldout`, exposure 0: never in the training "
            "text, a pool of never-seen references (`--reference heldout.jsonl`).")
