"""corpora_index: exact-tier evidence, merging, persistent index, readers, fingerprints, CLI."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from contam.errors import InputError
from contam.types import Item
from corpora_index import (
    BenchmarkIndex,
    CorpusIndex,
    Document,
    IncompatibleIndexError,
    IndexSettings,
    OverlapReport,
    ReaderOptions,
    ShardResult,
    build_index,
    expand_sources,
    finalize,
    scan_documents,
    scan_shard,
)
from corpora_index.normalize import Normalizer
from corpora_index.readers import read_source

_ALPHABET = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
)
WORDS = _ALPHABET.split(" ")
ITEM = " ".join(WORDS)  # 26 words
OTHER = (
    "the quick brown fox jumps over the lazy dog while seven wizards quietly hex the judge again and again"
)
FILLER = " ".join(f"filler{i}" for i in range(200))


def items() -> list[Item]:
    return [Item(id="a", partition="test", text=ITEM), Item(id="b", partition="test", text=OTHER)]


def test_exact_tier_reports_fraction_coverage_longest_span_and_offsets() -> None:
    index = BenchmarkIndex.build(items(), minhash=False)
    half = " ".join(WORDS[:16])  # 16 words: 4 of the item's 14 13-grams
    doc_full = FILLER + "\n" + ITEM.upper().replace(" ", "\n") + "\n" + FILLER
    docs = [Document("full", doc_full), Document("half", FILLER + " " + half + " " + FILLER)]
    report = finalize(index, scan_documents(index, docs))
    a, b = report.items
    assert a.matched and a.ngram_fraction == 1.0 and a.token_coverage == 1.0 and a.longest_span == 26
    assert [d.id for d in a.documents] == ["full", "half"]
    span = a.documents[0].spans[0]
    assert doc_full[span.start : span.end].lower().split() == WORDS
    assert a.documents[1].spans[0].tokens == 16
    assert a.tokens == 26 and a.ngrams == 14
    assert not b.matched and b.ngram_fraction == 0.0 and b.longest_span == 0 and b.documents == ()


def test_partial_copy_counts_only_its_ngrams() -> None:
    index = BenchmarkIndex.build(items(), minhash=False)
    report = finalize(index, scan_documents(index, [Document("d", " ".join(WORDS[:16]))]))
    a = report.items[0]
    assert a.ngram_fraction == pytest.approx(4 / 14)
    assert a.token_coverage == pytest.approx(16 / 26)
    assert a.longest_span == 16


def test_frequency_cap_ignores_ngrams_in_many_documents() -> None:
    index = BenchmarkIndex.build(items(), minhash=False)
    docs = [Document(f"d{i}", ITEM) for i in range(4)]
    result = scan_documents(index, docs)
    assert finalize(index, result).items[0].matched
    capped = finalize(index, result, frequency_cap=3).items[0]
    assert not capped.matched and capped.ngram_fraction == 0.0
    assert finalize(index, result, frequency_cap=4).items[0].matched


def test_minhash_tier_finds_an_edited_copy_the_exact_tier_misses() -> None:
    rows = [json.loads(line) for line in _gsm8k().read_text(encoding="utf-8").splitlines()[:5]]
    bench = [
        Item(id=f"g{i}", partition="test", text=r["question"] + "\n" + r["answer"])
        for i, r in enumerate(rows)
    ]
    words = Normalizer().tokens(bench[2].text)
    edited = " ".join(w if i % 10 != 4 else "EDIT" for i, w in enumerate(words))  # one word in 10 changed
    index = BenchmarkIndex.build(bench)
    report = finalize(index, scan_documents(index, [Document("copy", FILLER + " " + edited + " " + FILLER)]))
    item = report.items[2]
    assert item.longest_span < 13  # no 13 consecutive words survive
    assert item.minhash is not None and item.minhash.document == "copy"
    assert 0.5 < item.minhash.containment <= 1.0 and 0 < item.minhash.jaccard <= item.minhash.containment
    assert all(other.minhash is None for k, other in enumerate(report.items) if k != 2)


def _gsm8k() -> Path:
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "test.jsonl"


def test_shard_results_add_with_an_identity_in_any_grouping() -> None:
    index = BenchmarkIndex.build(items())
    docs = [Document(f"d{i}", FILLER + " " + (ITEM if i % 2 else OTHER) + " " + FILLER) for i in range(6)]
    parts = [scan_documents(index, docs[i : i + 2]) for i in range(0, 6, 2)]
    whole = finalize(index, scan_documents(index, docs))
    assert finalize(index, sum(parts, ShardResult.zero())) == whole
    assert finalize(index, parts[2] + (parts[0] + parts[1])) == whole
    assert finalize(index, ShardResult.from_bytes(sum(parts, ShardResult.zero()).to_bytes())) == whole
    left, right = ShardResult.zero() + parts[0], parts[0] + ShardResult.zero()
    assert finalize(index, left) == finalize(index, right) == finalize(index, parts[0])


def test_a_document_repeating_an_item_keeps_bounded_evidence(tmp_path: Path) -> None:
    from corpora_index.scan import SPANS_PER_DOCUMENT

    index = BenchmarkIndex.build(items(), minhash=False)

    def doc(copies: int) -> Document:
        return Document(f"rep{copies}", " ".join([FILLER] + [ITEM, "sep sep"] * copies))

    few, many = (scan_documents(index, [doc(c)]) for c in (SPANS_PER_DOCUMENT + 4, 20 * SPANS_PER_DOCUMENT))
    # rows of the kept copies plus the item's 14 n-gram positions: the same for 20 or 320 copies
    assert few.hit_key.shape == many.hit_key.shape
    assert few.hit_key.shape[0] <= (SPANS_PER_DOCUMENT + 1) * 14
    a = finalize(index, many).items[0]
    assert a.matched and a.longest_span == 26 and a.ngram_fraction == 1.0 and a.token_coverage == 1.0
    [match] = a.documents
    assert len(match.spans) == SPANS_PER_DOCUMENT
    assert match.spans_omitted == 20 * SPANS_PER_DOCUMENT - SPANS_PER_DOCUMENT
    # the first copies are listed, in document order
    assert [s.start for s in match.spans] == sorted(s.start for s in match.spans)
    assert match.spans[0].start == len(FILLER) + 1
    # sharded or not, streamed or from a persistent index: the same evidence
    docs = [doc(3), doc(40), Document("other", OTHER), doc(17)]
    whole = finalize(index, scan_documents(index, docs))
    parts = [
        scan_documents(index, docs[:1]),
        scan_documents(index, docs[1:3]),
        scan_documents(index, docs[3:]),
    ]
    assert finalize(index, sum(parts, ShardResult.zero())) == whole
    assert finalize(index, ShardResult.from_bytes(ShardResult.concat(parts).to_bytes())) == whole
    folder = tmp_path / "rep"
    folder.mkdir()
    for d in docs:
        (folder / f"{d.id}.txt").write_text(d.text, encoding="utf-8")
    sources = expand_sources([folder])
    streamed = finalize(index, scan_shard(index, sources))
    build_index(sources, tmp_path / "idx", shard_bytes=5000)
    assert finalize(index, CorpusIndex(tmp_path / "idx").query(index)) == streamed
    # documents by longest match (26 words in all three), then by id: rep17, rep3, rep40
    assert [d.spans_omitted for d in streamed.items[0].documents] == [1, 0, 40 - SPANS_PER_DOCUMENT]
    # a cap that drops nothing changes nothing; one below the document count drops the item
    assert finalize(index, scan_shard(index, sources), frequency_cap=3) == finalize(
        index, scan_shard(index, sources)
    ).model_copy(update={"frequency_cap": 3})
    assert not finalize(index, scan_shard(index, sources), frequency_cap=2).items[0].matched


def _write_corpus(root: Path) -> Path:
    folder = root / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(FILLER + " " + ITEM + " " + FILLER, encoding="utf-8")
    (folder / "sub" / "b.txt").write_text(OTHER, encoding="utf-8")
    with gzip.open(folder / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "nothing here", "id": "c1"}) + "\n")
        fh.write(json.dumps({"text": ITEM.replace(" ", "\n"), "id": "c2"}) + "\n")
    cctx = zstandard.ZstdCompressor()
    (folder / "d.jsonl.zst").write_bytes(cctx.compress((json.dumps({"text": OTHER}) + "\n").encode()))
    pq.write_table(pa.table({"text": [ITEM, "x"], "id": ["p0", "p1"]}), folder / "e.parquet")
    return folder


def test_readers_cover_jsonl_gz_zst_parquet_and_text_folders(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path)
    sources = expand_sources([folder], ReaderOptions(id_field="id"))
    problems: list = []
    docs = [d for s in sources for d in read_source(s, ReaderOptions(id_field="id"), problems)]
    ids = [d.id for d in docs]
    assert ids == [
        str(folder / "a.txt"),
        "c1",
        "c2",
        f"{folder / 'd.jsonl.zst'}:1",
        "p0",
        "p1",
        str(folder / "sub/b.txt"),
    ]
    assert problems == []


def test_corrupt_input_fails_with_its_location_or_is_skipped_and_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"text": ITEM}) + "\n{not json\n" + json.dumps({"text": OTHER}) + "\n", encoding="utf-8"
    )
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00binary")
    sources = expand_sources([bad, tmp_path / "bin.txt"])
    index = BenchmarkIndex.build(items(), minhash=False)
    with pytest.raises(InputError) as err:
        scan_shard(index, sources)
    assert err.value.path == str(bad) and err.value.line == 2
    result = scan_shard(index, sources, ReaderOptions(on_error="skip"))
    problems = [(p.path, p.line) for p in result.problems]
    assert problems == [(str(bad), 2), (str(tmp_path / "bin.txt"), None)]
    report = finalize(index, result)
    assert report.items[0].matched and report.items[1].matched and report.corpus.documents == 2


def test_persistent_index_matches_streaming_and_refuses_other_settings(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path)
    sources = expand_sources([folder])
    index = BenchmarkIndex.build(items(), minhash=False)
    streamed = finalize(index, scan_shard(index, sources), mode="x")
    stats = build_index(sources, tmp_path / "idx", shard_bytes=300)
    assert stats.shards > 1 and stats.reused == 0
    queried = finalize(index, CorpusIndex(tmp_path / "idx").query(index), mode="x")
    assert queried.items == streamed.items and queried.items[0].matched
    assert queried.corpus.documents == streamed.corpus.documents
    # re-running the build reuses every shard
    assert build_index(sources, tmp_path / "idx", shard_bytes=300).reused == stats.shards
    other = BenchmarkIndex.build(items(), IndexSettings(n=8), minhash=False)
    with pytest.raises(IncompatibleIndexError, match="n: index has 13, asked for 8"):
        CorpusIndex(tmp_path / "idx").query(other)
    with pytest.raises(IncompatibleIndexError):
        build_index(sources, tmp_path / "idx", IndexSettings(n=8), shard_bytes=300)


def test_benchmark_index_round_trips_through_its_versioned_file(tmp_path: Path) -> None:
    index = BenchmarkIndex.build(items())
    index.save(tmp_path / "b")
    loaded = BenchmarkIndex.load(tmp_path / "b", expect=IndexSettings())
    docs = [Document("d", ITEM)]
    assert finalize(loaded, scan_documents(loaded, docs)) == finalize(index, scan_documents(index, docs))
    with pytest.raises(IncompatibleIndexError):
        BenchmarkIndex.load(tmp_path / "b", expect=IndexSettings(seed=3))


def test_overlap_json_keeps_its_public_field_names() -> None:
    index = BenchmarkIndex.build(items())
    report = finalize(index, scan_documents(index, [Document("d", ITEM)]))
    data = json.loads(report.model_dump_json())
    assert {"schema_version", "fingerprint", "items"} <= set(data)
    assert {"n", "normalizer", "hash", "seed", "minhash"} <= set(data["fingerprint"])
    assert {"num_perm", "seed", "scheme"} <= set(data["fingerprint"]["minhash"])
    item = data["items"][0]
    for key in (
        "id",
        "partition",
        "matched",
        "ngram_fraction",
        "token_coverage",
        "longest_span",
        "minhash",
        "documents",
    ):
        assert key in item
    assert set(item["minhash"]) >= {"containment", "jaccard"}
    assert set(item["documents"][0]) >= {"id", "spans"}
    assert OverlapReport.model_validate_json(report.model_dump_json()) == report


def _bench_file(tmp_path: Path) -> Path:
    path = tmp_path / "bench.jsonl"
    rows = [{"id": it.id, "text": it.text, "partition": it.partition} for it in items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _contam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contam.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_cli_overlap_and_index_build_query_agree(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from contam.cli.main import cli

    folder = _write_corpus(tmp_path)
    bench = _bench_file(tmp_path)
    runner = CliRunner()
    r1 = runner.invoke(cli, ["overlap", str(bench), str(folder), "--out", str(tmp_path / "o1.json")])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(
        cli, ["index", "build", str(folder), "--out", str(tmp_path / "idx"), "--shard-mb", "0.001"]
    )
    assert r2.exit_code == 0, r2.output
    r3 = runner.invoke(
        cli, ["index", "query", str(tmp_path / "idx"), str(bench), "--out", str(tmp_path / "o2.json")]
    )
    assert r3.exit_code == 0, r3.output
    o1, o2 = OverlapReport.read(tmp_path / "o1.json"), OverlapReport.read(tmp_path / "o2.json")
    assert [i.matched for i in o1.items] == [True, True]
    strip = [i.model_copy(update={"minhash": None}) for i in o1.items]
    assert strip == list(o2.items)
    # an index built with other settings is refused with exit code 2 and a clear message
    r4 = runner.invoke(cli, ["index", "build", str(folder), "--out", str(tmp_path / "idx"), "--n", "8"])
    assert r4.exit_code != 0


def test_cli_reports_corrupt_corpus_location_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{broken\n', encoding="utf-8")
    done = _contam(
        "overlap", str(_bench_file(tmp_path)), str(bad), "--out", str(tmp_path / "o.json"), "--quiet"
    )
    assert done.returncode == 2 and f"{bad}:2" in done.stderr
    done = _contam(
        "overlap",
        str(_bench_file(tmp_path)),
        str(bad),
        "--out",
        str(tmp_path / "o.json"),
        "--on-error",
        "skip",
    )
    assert done.returncode == 0, done.stderr
    assert OverlapReport.read(tmp_path / "o.json").corpus.problems[0].line == 2


def test_killed_index_build_resumes_without_corrupting_the_index(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(400):
        body = " ".join(f"w{(i * 7919 + k) % 50000}" for k in range(3000))
        (corpus / f"{i:04d}.txt").write_text(body + (" " + ITEM if i == 399 else ""), encoding="utf-8")
    out = tmp_path / "idx"
    args = [sys.executable, "-m", "contam.cli.main", "index", "build", str(corpus), "--out", str(out)]
    proc = subprocess.Popen([*args, "--shard-mb", "0.1", "--quiet"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "shard-00002").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "index.json").read_text())
    assert not manifest["complete"], "the build finished before it could be killed"
    with pytest.raises(InputError, match="did not finish"):
        CorpusIndex(out)
    done = subprocess.run([*args, "--shard-mb", "0.1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "reused" in done.stderr and " 0 reused" not in done.stderr
    assert not list(out.glob("*.tmp"))
    fresh = tmp_path / "fresh"
    build_index(expand_sources([corpus]), fresh, shard_bytes=int(0.1 * (1 << 20)))
    index = BenchmarkIndex.build(items(), minhash=False)
    resumed = finalize(index, CorpusIndex(out).query(index))
    assert resumed == finalize(index, CorpusIndex(fresh).query(index))
    assert resumed.items[0].matched
