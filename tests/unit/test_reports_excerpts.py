"""The most suspicious items: which are chosen, and their corpus spans read back from a real overlap
scan over JSONL (plain and gzip), Parquet and text files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from contam.report import ScanReport
from contam.reports import select_excerpts
from contam.reports.excerpts import CONTEXT, MAX_TEXT
from contam.types import Benchmark, Item, Partition
from contam.verdicts.types import Evidence, PartitionVerdict, Verdict, VerdictPolicy, VerdictSet
from corpora_index.report import DocumentMatch, ItemOverlap, Span
from tests.fixtures.reports import SEEN, hand_report, scanned_report

PAD = "Unrelated words come first in this document, quite a few of them, before the copy: "


def _corpus(folder: Path) -> dict[str, str]:
    """Four corpus files, each holding one seen item inside other text; item id -> the file."""
    folder.mkdir()
    lines = [json.dumps({"text": "nothing to see in this line at all"}), json.dumps({"text": PAD + SEEN[3] + " end."})]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write(json.dumps({"text": PAD + SEEN[5] + " and the rest of it."}) + "\n")
    (folder / "c.txt").write_text(PAD * 3 + SEEN[7] + "\nlast line\n", encoding="utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["row one, no copy", PAD + SEEN[1]]}), folder / "d.parquet")
    return {"s3": "a.jsonl:2", "s5": "b.jsonl.gz:1", "s7": "c.txt", "s1": "d.parquet#2"}


@pytest.fixture(scope="module")
def scanned_with_overlap(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScanReport, Benchmark, dict[str, str]]:
    from corpora_index.api import scan
    from corpora_index.settings import IndexSettings

    root = tmp_path_factory.mktemp("excerpts")
    report, bench = scanned_report(root)
    where = _corpus(root / "corpus")
    items = [(i.id, i.partition, i.text) for i in bench.items()]
    # 5-grams: the seen items are 14 words, barely more than the default 13-gram
    overlap = scan(items, [str(root / "corpus")], settings=IndexSettings(n=5), minhash=False)
    return report.model_copy(update={"overlap": overlap}), bench, where


def _with_verdict(report: ScanReport, *evidence: Evidence) -> ScanReport:
    verdict = PartitionVerdict(partition="seen", verdict=Verdict.CONTAMINATED, rule="r", rule_id="combined",
                               evidence=evidence)
    return report.model_copy(update={"verdicts": VerdictSet(policy=VerdictPolicy(), partitions=(verdict,))})


def _ev(source: str, name: str) -> Evidence:
    return Evidence(source=source, name=name, uses_reference=source == "probe", summary=name)


def test_without_verdicts_the_first_probes_top_items_with_all_probes_scores(scanned_with_overlap) -> None:
    report, bench, _ = scanned_with_overlap
    excerpts = select_excerpts(report.model_copy(update={"verdicts": None}), bench, k=3)
    loss = next(r for r in report.probes if r.probe == "loss")
    ranked = sorted(loss.items, key=lambda s: (-s.score, s.id))
    assert [e.id for e in excerpts] == [s.id for s in ranked[:3]]
    assert {e.partition for e in excerpts} == {"seen"}, "the reference is not a tested partition"
    first = excerpts[0]
    assert first.why.startswith(f"#1 loss score in seen ({ranked[0].score:.4g}")
    assert set(first.scores) == {"loss", "min_k"} and first.scores["loss"] == ranked[0].score
    assert first.text == bench.partition("seen").items[int(first.id[1:])].text and not first.truncated


def test_the_scans_own_verdict_picks_its_strongest_probe(scanned_with_overlap) -> None:
    report, bench, _ = scanned_with_overlap
    assert report.verdicts is not None, "a scan decides verdicts by default"
    strongest = next(e.name for e in report.verdicts.of("seen").evidence if e.source == "probe")
    result = next(r for r in report.probes if r.probe == strongest)
    excerpts = select_excerpts(report, bench, k=2)
    assert [e.id for e in excerpts] == [s.id for s in sorted(result.items, key=lambda s: (-s.score, s.id))[:2]]
    assert excerpts[0].why.startswith(f"#1 {strongest} score in seen")


def test_the_verdicts_evidence_order_picks_the_probe(scanned_with_overlap) -> None:
    report, bench, _ = scanned_with_overlap
    excerpts = select_excerpts(_with_verdict(report, _ev("probe", "min_k"), _ev("probe", "loss")), bench, k=4)
    min_k = next(r for r in report.probes if r.probe == "min_k")
    assert [e.id for e in excerpts] == [s.id for s in sorted(min_k.items, key=lambda s: (-s.score, s.id))[:4]]
    assert all("min_k score" in e.why and "strongest probe by the verdict" in e.why for e in excerpts)


def test_corpus_snippets_are_read_back_from_every_corpus_format(scanned_with_overlap) -> None:
    report, bench, where = scanned_with_overlap
    excerpts = {e.id: e for e in select_excerpts(report, bench, k=len(SEEN))}
    assert len(excerpts) == len(SEEN)
    for item_id, document in where.items():
        (snippet,) = excerpts[item_id].snippets
        assert snippet.document.endswith("/corpus/" + document)
        assert snippet.text[snippet.span_start : snippet.span_end] == SEEN[int(item_id[1:])]
        assert snippet.span_start == CONTEXT  # PAD is longer than the context shown
        assert len(snippet.text) - snippet.span_end <= CONTEXT
    assert all(not e.snippets for i, e in excerpts.items() if i not in where)


def test_corpus_evidence_first_ranks_items_by_coverage(scanned_with_overlap) -> None:
    report, bench, where = scanned_with_overlap
    excerpts = select_excerpts(_with_verdict(report, _ev("corpus", "corpus_overlap"), _ev("probe", "loss")), bench)
    assert [e.id for e in excerpts] == sorted(where)[:3]  # all fully covered: ties broken by id
    words = len(SEEN[1].split())  # s1, the whole item found verbatim
    assert excerpts[0].why == f"#1 corpus coverage in seen (100% of its words, longest verbatim span {words} words)"
    assert all(e.snippets for e in excerpts)


def test_unreadable_documents_give_no_snippet_and_no_error(tmp_path: Path, scanned_with_overlap) -> None:
    report, bench, _ = scanned_with_overlap
    short = tmp_path / "short.txt"
    short.write_text("too short for the span", encoding="utf-8")
    documents = (
        DocumentMatch(id=str(tmp_path / "gone.jsonl") + ":1", spans=(Span(start=0, end=5, tokens=5),)),
        DocumentMatch(id="an-id-field-value", spans=(Span(start=0, end=5, tokens=5),)),
        DocumentMatch(id=str(short), spans=(Span(start=10, end=500, tokens=9),)),  # the file changed
    )
    items = tuple(
        ItemOverlap(id=i.id, partition=i.partition, matched=True, ngram_fraction=1.0, token_coverage=1.0,
                    longest_span=9, documents=documents)
        for i in bench.items()
    )
    broken = report.model_copy(update={"overlap": report.overlap.model_copy(update={"items": items})})
    excerpts = select_excerpts(broken, bench)
    assert len(excerpts) == 3 and all(e.snippets == () for e in excerpts)


def test_long_item_text_is_cut() -> None:
    report = hand_report(hostile=False)
    names = ("seen_x16", "seen_x1", "unseen_a", "other_kind")
    long_text = "word " * 1000
    partitions = {
        name: Partition(name, tuple(Item(id=f"i{n}", partition=name, text=long_text if n == 13 else "short")
                                    for n in range(40)))
        for name in names
    }
    bench = Benchmark(name="b", format="text", partitions=partitions, source="b.jsonl", sha256="0")
    excerpts = select_excerpts(report, bench, k=1)
    # hand-made scores tie at the top (i6, i13, i20 ...): the smallest id wins
    assert [(e.partition, e.id) for e in excerpts] == [(name, "i13") for name in names]
    assert all(len(e.text) == MAX_TEXT and e.truncated for e in excerpts)
    with pytest.raises(ValueError, match="at least 1"):
        select_excerpts(report, bench, k=0)
