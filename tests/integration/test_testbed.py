"""The testbed against ground truth: deterministic builds, a loadable model, and a measurable signal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contam.benchmarks import load_benchmark
from contam.stats import compare_to_reference
from contam.testbed.build import build, read_build
from contam.testbed.config import BuildArgs

pytestmark = pytest.mark.integration

# Few steps: determinism and caching do not need a converged model.
SMALL = BuildArgs(benchmark="humaneval", preset="ci", seed=7, steps=8)


def _mean_logliks(model_dir: Path, texts: list[str]) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    out = []
    with torch.inference_mode():
        for text in texts:
            ids = torch.tensor([tok(text)["input_ids"][:1024]])  # the tokenizer prepends BOS
            assert int(ids[0, 0]) == tok.bos_token_id
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
            out.append(float(logp.gather(1, ids[0, 1:, None]).mean()))
    return out


def test_same_seed_gives_identical_truth_and_weights(tmp_path: Path) -> None:
    a = build(SMALL, tmp_path / "a", cache_dir=tmp_path / "cache_a")
    # The second build in a process of its own, through the CLI, with a separate cache: really
    # built twice, and nothing (thread pools, hash seeds, torch state) carries over between them.
    done = subprocess.run(
        [sys.executable, "-m", "contam.cli.main", "testbed", "build", "--benchmark", "humaneval",
         "--preset", "ci", "--seed", str(SMALL.seed), "--steps", str(SMALL.steps),
         "--out", str(tmp_path / "b"), "--cache-dir", str(tmp_path / "cache_b")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "123"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    b = read_build(tmp_path / "b")
    assert not a.cached and b is not None and "reused" not in done.stdout and a.key == b["key"]
    assert (a.path / "truth.json").read_bytes() == (tmp_path / "b" / "truth.json").read_bytes()
    weights_a = (a.path / "model" / "model.safetensors").read_bytes()
    assert weights_a == (tmp_path / "b" / "model" / "model.safetensors").read_bytes()
    other = build(SMALL.model_copy(update={"seed": 8}), tmp_path / "c", cache_dir=tmp_path / "cache_a")
    assert (other.path / "model" / "model.safetensors").read_bytes() != weights_a
    assert json.loads((other.path / "truth.json").read_text())["exposures"] != json.loads(
        (a.path / "truth.json").read_text())["exposures"]


def test_second_build_reuses_the_cache_and_interrupted_build_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = build(SMALL, tmp_path / "one", cache_dir=cache)
    again = build(SMALL, tmp_path / "one", cache_dir=cache)
    elsewhere = build(SMALL, tmp_path / "two", cache_dir=cache)
    assert not first.cached and again.cached and elsewhere.cached
    assert (tmp_path / "two" / "model" / "model.safetensors").read_bytes() == (
        tmp_path / "one" / "model" / "model.safetensors").read_bytes()

    import contam.testbed.train as train_module

    def boom(*_a: Any, **_k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", boom)
    with pytest.raises(KeyboardInterrupt):
        build(SMALL.model_copy(update={"seed": 99}), tmp_path / "three", cache_dir=cache)
    assert not (tmp_path / "three").exists()
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [first.key]
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]
    assert read_build(cache / first.key) is not None


def test_ci_testbed_outputs_and_model_config(testbed_ci: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    record = read_build(testbed_ci)
    assert record is not None and record["args"]["preset"] == "ci"
    for name in ("card.md", "train_log.jsonl", "truth.json", "benchmark.jsonl"):
        assert (testbed_ci / name).is_file(), name
    bench = load_benchmark(str(testbed_ci / "benchmark.jsonl"))
    truth = json.loads((testbed_ci / "truth.json").read_text())
    assert bench.counts == {"seen_x16": 41, "seen_x4": 41, "seen_x1": 41, "unseen": 41}
    for item in bench.items():
        expected = 0 if item.partition == "unseen" else int(item.partition.removeprefix("seen_x"))
        assert truth["exposures"][item.id] == expected
    tok = AutoTokenizer.from_pretrained(str(testbed_ci / "model"))
    config = AutoConfig.from_pretrained(str(testbed_ci / "model"))
    gen = GenerationConfig.from_pretrained(str(testbed_ci / "model"))
    for cfg in (config, gen):
        assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (
            tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert tok.convert_ids_to_tokens([tok.eos_token_id]) == ["</s>"]
    assert '"' not in tok.convert_ids_to_tokens([tok.eos_token_id, tok.bos_token_id, tok.pad_token_id])
    losses = [json.loads(line)["loss"] for line in (testbed_ci / "train_log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0] - 2.0  # it learned something


def test_ci_seen_x16_has_higher_loglik_than_unseen(testbed_ci: Path) -> None:
    bench = load_benchmark(str(testbed_ci / "benchmark.jsonl"))
    seen = _mean_logliks(testbed_ci / "model", [i.text for i in bench.partition("seen_x16").items])
    unseen = _mean_logliks(testbed_ci / "model", [i.text for i in bench.partition("unseen").items])
    stat = compare_to_reference(seen, unseen, reference_name="unseen")
    assert sum(seen) / len(seen) > sum(unseen) / len(unseen)
    assert stat.p_value < 0.01, stat
