"""Sanity scores on a tiny random Llama: each score matches its definition, computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from contam.testbed.sanity import Sanity, SanityRow, score_texts


class _Tok:
    bos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [3 + (ord(c) % 40) for c in text]}


def _model() -> object:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def test_scores_follow_their_definitions() -> None:
    model, tok = _model(), _Tok()
    text = "def add(a, b): return a + b"
    (got,), cut = score_texts(model, tok, [text], k=0.2)
    assert cut == 0
    ids = torch.tensor([[1, *tok(text)["input_ids"]]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
    lp = [float(logp[i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1)]
    assert got.tokens == len(text)
    assert got.loss == pytest.approx(sum(lp) / len(lp), abs=1e-5)
    low = sorted(lp)[: int(len(lp) * 0.2)]
    assert got.min_k == pytest.approx(sum(low) / len(low), abs=1e-5)
    pp = []
    for i, v in enumerate(lp):
        p = logp[i].exp()
        mu = float((p * logp[i]).sum())
        sigma = math.sqrt(float((p * logp[i] ** 2).sum()) - mu * mu)
        pp.append((v - mu) / sigma)
    low_pp = sorted(pp)[: int(len(pp) * 0.2)]
    assert got.min_k_pp == pytest.approx(sum(low_pp) / len(low_pp), abs=1e-4)


def test_long_texts_are_cut_and_counted() -> None:
    (got,), cut = score_texts(_model(), _Tok(), ["x" * 100], max_tokens=32)
    assert cut == 1 and got.tokens == 31


def test_table_lists_every_seen_partition() -> None:
    row = SanityRow(partition="seen_x4", exposures=4, n=41, mean_loglik=-3.5, auroc_loss=0.8,
                    auroc_min_k=0.85, auroc_min_k_pp=0.9)
    table = Sanity(k=0.2, unseen_n=41, unseen_mean_loglik=-4.0, rows=(row,), truncated_items=0).table()
    assert "seen_x4" in table and "0.800" in table and "0.900" in table and "n=41" in table
