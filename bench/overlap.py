"""Corpus overlap benchmark: speed, memory, recall and precision on a planted stdlib corpus.

    python bench/overlap.py [--corpus-mb 32] [--per-form 100] [--workdir DIR]

Builds a ~32 MB corpus from the CPython standard library (tests included) with GSM8K and HumanEval
items planted in six forms, then times, each in a fresh process (so peak memory is its own):
this project's streaming scan (exact tier alone, then with the MinHash tier), the persistent index
(its build, then in another process its queries: 1,000 items, then the whole benchmark), a
plain-Python 13-gram set lookup, and a straightforward datasketch MinHashLSH pipeline with default
settings (on a sample: it is slow). MB/s are per core: every run here uses one process; for the
index query they are corpus MB answered per second of query. Numbers drift on shared machines:
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.overlap_planted import (  # noqa: E402
    EXACT_FORMS,
    FORMS,
    Planted,
    build_planted,
    recall_precision,
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(workdir: Path) -> tuple[Planted, list[Path]]:
    meta = json.loads((workdir / "planted.json").read_text())
    from contam.types import Item

    items = [Item(id=i, partition=p, text=t) for i, p, t in meta["items"]]
    planted = Planted(
        workdir / "corpus",
        items,
        {k: tuple(v) for k, v in meta["planted"].items()},  # type: ignore[misc]
        set(meta["clean"]),
        meta["bytes"],
    )
    return planted, sorted((workdir / "corpus").iterdir())


# -- phases, each run in its own process ---------------------------------------------------------


def phase_stream(workdir: Path, minhash: bool) -> dict[str, Any]:
    from corpora_index.api import scan

    planted, _ = _load(workdir)
    scan(planted.items[:5], [planted.corpus], minhash=minhash)  # warm the native code cache
    t0 = time.perf_counter()
    report = scan(planted.items, [planted.corpus], minhash=minhash)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "scores": recall_precision(report, planted), "peak_mb": _peak_mb()}


def phase_index_build(workdir: Path) -> dict[str, Any]:
    from corpora_index.persistent import build_index
    from corpora_index.readers import expand_sources

    planted, _ = _load(workdir)
    out = workdir / "idx"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    stats = build_index(expand_sources([planted.corpus]), out, shard_bytes=8 << 20)
    build_s = time.perf_counter() - t0
    return {
        "build_seconds": build_s,
        "bytes_per_ngram": stats.bytes_on_disk / max(1, stats.ngrams),
        "keys_bytes_per_ngram": 8 * stats.keys / max(1, stats.ngrams),
        "ngrams": stats.ngrams,
        "peak_mb": _peak_mb(),
    }


def phase_index_query(workdir: Path) -> dict[str, Any]:
    """Queries of the index built by `index_build`, in a process of their own (peak memory)."""
    from corpora_index.api import check_index
    from corpora_index.persistent import CorpusIndex

    planted, _ = _load(workdir)
    out = workdir / "idx"
    check_index(planted.items[:5], out)  # warm
    t0 = time.perf_counter()
    check_index(planted.items[:1000], out)
    query_1000 = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = check_index(planted.items, out)
    query_all = time.perf_counter() - t0
    return {
        "query_1000_seconds": query_1000,
        "query_all_seconds": query_all,
        "corpus_bytes": CorpusIndex(out).corpus_bytes,
        "scores": recall_precision(report, planted),
        "peak_mb": _peak_mb(),
    }


class _Flag:
    """What recall_precision reads: per item `matched`, `documents` and `minhash`."""

    def __init__(self, item_id: str, docs: set[str]) -> None:
        # a baseline has one kind of hit: it counts for the exact and the near-copy forms alike
        self.id = item_id
        self.matched = bool(docs)
        self.documents = [type("D", (), {"id": d})() for d in sorted(docs)]
        self.minhash = type("M", (), {"document": sorted(docs)[0]})() if docs else None


def phase_plain_python(workdir: Path) -> dict[str, Any]:
    """The simple baseline: lower-case, split into words, look each 13-gram tuple up in a set."""
    planted, files = _load(workdir)
    t0 = time.perf_counter()
    grams: dict[tuple[str, ...], set[str]] = {}
    for item in planted.items:
        words = re.findall(r"\w+", item.text.lower())
        for i in range(len(words) - 12):
            grams.setdefault(tuple(words[i : i + 13]), set()).add(item.id)
    found: dict[str, set[str]] = {}
    size = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        size += len(text.encode())
        words = re.findall(r"\w+", text.lower())
        for i in range(len(words) - 12):
            hit = grams.get(tuple(words[i : i + 13]))
            if hit:
                for item_id in hit:
                    found.setdefault(item_id, set()).add(str(path))
    seconds = time.perf_counter() - t0
    report = type("R", (), {"items": [_Flag(i.id, found.get(i.id, set())) for i in planted.items]})()
    return {
        "seconds": seconds,
        "bytes": size,
        "scores": recall_precision(report, planted),
        "peak_mb": _peak_mb(),
    }


def phase_datasketch(workdir: Path, sample_mb: float) -> dict[str, Any]:
    """A straightforward datasketch pipeline, default settings: MinHash (sha1, 128 perms) of each item's
    word set, MinHashLSH() (threshold 0.9), queried with item-sized word windows (half overlap)."""
    from datasketch import MinHash, MinHashLSH

    planted, files = _load(workdir)
    planted_docs = {doc for _, doc in planted.planted.values()}
    sample = [p for p in files if str(p) in planted_docs]
    budget = sample_mb * 1e6 - sum(p.stat().st_size for p in sample)
    for p in files:
        if budget <= 0:
            break
        if str(p) not in planted_docs:
            sample.append(p)
            budget -= p.stat().st_size
    t0 = time.perf_counter()
    lsh = MinHashLSH()
    sizes = []
    for item in planted.items:
        words = item.text.lower().split()
        m = MinHash()
        m.update_batch([w.encode() for w in set(words)])
        lsh.insert(item.id, m)
        sizes.append(len(words))
    window = sorted(sizes)[len(sizes) // 2]
    found: dict[str, set[str]] = {}
    size = 0
    for path in sample:
        text = path.read_text(encoding="utf-8")
        size += len(text.encode())
        words = text.lower().split()
        for start in range(0, max(1, len(words) - window // 2), max(1, window // 2)):
            m = MinHash()
            m.update_batch([w.encode() for w in set(words[start : start + window])])
            for item_id in lsh.query(m):
                found.setdefault(item_id, set()).add(str(path))
    seconds = time.perf_counter() - t0
    sampled = {str(p) for p in sample}
    sub = Planted(
        planted.corpus,
        planted.items,
        {k: v for k, v in planted.planted.items() if v[1] in sampled},
        planted.clean,
        size,
    )
    flags = [_Flag(i.id, found.get(i.id, set())) for i in planted.items]
    report = type("R", (), {"items": flags})()
    return {"seconds": seconds, "bytes": size, "scores": recall_precision(report, sub), "peak_mb": _peak_mb()}


PHASES = {
    "stream_exact": lambda w, a: phase_stream(w, minhash=False),
    "stream_minhash": lambda w, a: phase_stream(w, minhash=True),
    "index_build": lambda w, a: phase_index_build(w),
    "index_query": lambda w, a: phase_index_query(w),  # after index_build: dicts keep their order
    "plain_python": lambda w, a: phase_plain_python(w),
    "datasketch": lambda w, a: phase_datasketch(w, a.sample_mb),
}


def run_phase(name: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--workdir",
        str(workdir),
        "--sample-mb",
        str(args.sample_mb),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-mb", type=float, default=32.0)
    parser.add_argument("--per-form", type=int, default=100, help="items planted in each form")
    parser.add_argument(
        "--sample-mb", type=float, default=3.0, help="corpus sample for the datasketch baseline"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--phase", choices=sorted(PHASES), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase is not None:
        print(json.dumps(PHASES[args.phase](args.workdir, args)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contam-overlap-bench-"))
    planted = build_planted(
        workdir / "corpus",
        corpus_bytes=int(args.corpus_mb * 1e6),
        per_form=args.per_form,
        clean=10_000,  # every other GSM8K test item and HumanEval problem stays unplanted
        include_tests=True,
    )
    (workdir / "planted.json").write_text(
        json.dumps(
            {
                "items": [[i.id, i.partition, i.text] for i in planted.items],
                "planted": planted.planted,
                "clean": sorted(planted.clean),
                "bytes": planted.corpus_bytes,
            }
        )
    )
    mb = planted.corpus_bytes / 1e6
    print(
        f"corpus: {mb:.1f} MB, {len(list(planted.corpus.iterdir()))} stdlib files; "
        f"benchmark: {len(planted.items)} items (GSM8K test + HumanEval), "
        f"{len(planted.planted)} planted ({args.per_form} per form), "
        f"{len(planted.clean)} clean"
    )
    results = {name: run_phase(name, workdir, args) for name in PHASES}

    rows = []

    def row(name: str, seconds: float, size_mb: float, peak: float, note: str = "") -> None:
        rows.append((name, f"{size_mb / seconds:8.1f}", f"{seconds:7.2f}", f"{peak:7.0f}", note))

    se, sm = results["stream_exact"], results["stream_minhash"]
    ib, iq = results["index_build"], results["index_query"]
    ix = {**ib, **iq}
    pp, ds = results["plain_python"], results["datasketch"]
    row("contam stream, exact tier", se["seconds"], mb, se["peak_mb"])
    row("contam stream, exact + MinHash", sm["seconds"], mb, sm["peak_mb"])
    row("contam index build", ib["build_seconds"], mb, ib["peak_mb"])
    row(
        "contam index query",
        iq["query_all_seconds"],
        iq["corpus_bytes"] / 1e6,
        iq["peak_mb"],
        f"all {len(planted.items)} items; corpus MB answered per s",
    )
    row("plain Python 13-gram set", pp["seconds"], pp["bytes"] / 1e6, pp["peak_mb"])
    row(
        "datasketch MinHashLSH, defaults",
        ds["seconds"],
        ds["bytes"] / 1e6,
        ds["peak_mb"],
        f"{ds['bytes'] / 1e6:.1f} MB sample",
    )
    print()
    print(f"{'pipeline':34} {'MB/s/core':>9} {'seconds':>8} {'peak MB':>8}  note")
    for r in rows:
        print(f"{r[0]:34} {r[1]:>9} {r[2]:>8} {r[3]:>8}  {r[4]}")
    print()
    ratio = (mb / se["seconds"]) / (pp["bytes"] / 1e6 / pp["seconds"])
    print(f"exact tier vs plain Python: {ratio:.1f}x (target >= 3x; target >= 50 MB/s/core)")
    print(f"MinHash tier (exact + MinHash end to end): {mb / sm['seconds']:.1f} MB/s/core (target >= 10)")
    print(
        f"persistent index: query {ix['query_1000_seconds']:.3f} s for 1,000 items, "
        f"{ix['query_all_seconds']:.3f} s for all {len(planted.items)} (target < 1 s); "
        f"{ix['bytes_per_ngram']:.1f} bytes on disk per corpus n-gram "
        f"({ix['keys_bytes_per_ngram']:.1f} in the sorted key array, the rest postings), "
        f"{ix['ngrams']} n-grams"
    )
    print()
    print("recall / precision per planted form")
    header = f"{'form':20}" + "".join(
        f"{n:>22}" for n in ("stream exact+MinHash", "persistent index", "plain Python", "datasketch")
    )
    print(header)
    for form in FORMS:
        cells = []
        for res, applies in ((sm, True), (ix, form in EXACT_FORMS), (pp, True), (ds, True)):
            r, p = res["scores"][form]
            cells.append(f"{r:.2f} / {p:.2f}" if applies else "n/a (exact only)")
        print(f"{form:20}" + "".join(f"{c:>22}" for c in cells))
    print("\ncontam: exact forms count the exact tier; the other three count the MinHash tier")
    print("(plain Python: its 13-gram hits for every form; datasketch: its LSH hits, on its sample only)")


if __name__ == "__main__":
    main()
