"""The most suspicious items of each tested partition, with their text and matched corpus spans.

Which items: the k highest-scored by the partition's strongest probe (the first probe in the
verdict's evidence order, else the first probe that scored the partition), or, when the corpus
overlap decided (it comes first in the evidence), the items with the most of their words found
verbatim in the corpus.

Corpus text is read back from the documents named in `report.overlap` through the corpus readers
themselves, so ids resolve exactly as the scan made them: a file path (text file), `path:line`
(JSONL, plain or compressed) or `path#row` (Parquet), relative to the folder the overlap scan ran
in. Each file is read once, stopping at the last document wanted. A document that cannot be found
(moved, or ids taken from an `--id-field`) gives no snippet, never an error: the report stays
renderable. JSONL and Parquet are read with the default text field `text`; a corpus indexed with
another `--text-field` gives no snippets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contam.report import CorpusSnippet, ItemExcerpt, ScanReport
from contam.results import ProbeResult
from contam.types import Benchmark
from corpora_index.report import CorpusProblem, ItemOverlap

MAX_TEXT = 2000  # characters of an item's text kept in the report
CONTEXT = 80  # characters of corpus text shown either side of a matched span
MAX_SNIPPETS = 3  # per item: the longest spans
MAX_SPAN_TEXT = 1200  # a very long match is shown cut in the middle

_JSONL_ID = re.compile(r"^(?P<path>.+):(?P<n>[1-9][0-9]*)$")
_PARQUET_ID = re.compile(r"^(?P<path>.+)#(?P<n>[1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class _Wanted:
    item: tuple[str, str]  # (partition, id)
    document: str
    start: int
    end: int
    words: int


def select_excerpts(report: ScanReport, bench: Benchmark, k: int = 3) -> tuple[ItemExcerpt, ...]:
    if k < 1:
        raise ValueError("k must be at least 1")
    chosen: list[tuple[str, str, str]] = []  # (partition, item id, why)
    for partition in _tested(report):
        chosen += _choose(report, partition, k)
    texts = {(p, item.id): item.text for p, part in bench.partitions.items() for item in part.items}
    wanted = [w for partition, item_id, _ in chosen for w in _spans(report.item_overlap(partition, item_id))]
    snippets = _read_snippets(wanted)
    out = []
    for partition, item_id, why in chosen:
        text = texts.get((partition, item_id))
        if text is None:  # the benchmark given is not the one scanned: nothing to show for it
            continue
        scores = {
            r.probe: s.score
            for r in report.probes
            if r.partition == partition
            for s in r.items
            if s.id == item_id
        }
        out.append(
            ItemExcerpt(
                partition=partition,
                id=item_id,
                text=text[:MAX_TEXT],
                truncated=len(text) > MAX_TEXT,
                why=why,
                scores=scores,
                snippets=tuple(snippets.get((partition, item_id), ())),
            )
        )
    return tuple(out)


def _tested(report: ScanReport) -> list[str]:
    if report.verdicts is not None:
        return [v.partition for v in report.verdicts.partitions]
    names: list[str] = []
    for r in report.probes:
        if r.items and r.partition not in names:
            names.append(r.partition)
    return names


def _choose(report: ScanReport, partition: str, k: int) -> list[tuple[str, str, str]]:
    results = {r.probe: r for r in report.probes if r.partition == partition and r.items}
    order: list[str] = []
    if report.verdicts is not None:
        verdict = next((v for v in report.verdicts.partitions if v.partition == partition), None)
        for ev in verdict.evidence if verdict else ():
            if ev.source == "corpus" and not order:
                corpus = _by_corpus(report, partition, k)
                if corpus:
                    return corpus
            if ev.source == "probe" and ev.name in results:
                order.append(ev.name)
    order += [name for name in results if name not in order]
    if not order:
        return _by_corpus(report, partition, k)
    probe = order[0]
    ranked = _ranked(results[probe])[:k]
    strongest = "strongest probe by the verdict" if report.verdicts is not None else "probe"
    return [
        (partition, s_id, f"#{rank} {probe} score in {partition} ({score:.4g}; {strongest})")
        for rank, (s_id, score) in enumerate(ranked, start=1)
    ]


def _ranked(result: ProbeResult) -> list[tuple[str, float]]:
    return sorted(((s.id, s.score) for s in result.items), key=lambda pair: (-pair[1], pair[0]))


def _by_corpus(report: ScanReport, partition: str, k: int) -> list[tuple[str, str, str]]:
    if report.overlap is None:
        return []
    matched = [i for i in report.overlap.items if i.partition == partition and i.matched]
    matched.sort(key=lambda i: (-i.token_coverage, -i.longest_span, i.id))
    return [
        (
            partition,
            i.id,
            f"#{rank} corpus coverage in {partition} ({i.token_coverage:.0%} of its words, "
            f"longest verbatim span {i.longest_span} words)",
        )
        for rank, i in enumerate(matched[:k], start=1)
    ]


def _spans(overlap: ItemOverlap | None) -> list[_Wanted]:
    """The item's longest exact spans (or its MinHash near-copy window when it has none)."""
    if overlap is None:
        return []
    key = (overlap.partition, overlap.id)
    spans = [
        _Wanted(key, doc.id, span.start, span.end, span.tokens)
        for doc in overlap.documents
        for span in doc.spans
    ]
    spans.sort(key=lambda w: (-w.words, w.document, w.start))
    if not spans and overlap.minhash is not None:
        m = overlap.minhash
        spans = [_Wanted(key, m.document, m.start, m.end, 0)]
    return spans[:MAX_SNIPPETS]


def _read_snippets(wanted: Sequence[_Wanted]) -> dict[tuple[str, str], list[CorpusSnippet]]:
    by_file: dict[tuple[str, str], set[str]] = {}  # (path, kind) -> document ids
    for w in wanted:
        located = _locate(w.document)
        if located is not None:
            by_file.setdefault(located, set()).add(w.document)
    texts: dict[str, str] = {}
    for (path, kind), ids in by_file.items():
        texts.update(_read_documents(path, kind, ids))
    out: dict[tuple[str, str], list[CorpusSnippet]] = {}
    for w in wanted:
        text = texts.get(w.document)
        if text is not None and 0 <= w.start < w.end <= len(text):
            out.setdefault(w.item, []).append(_snippet(w, text))
    return out


def _locate(document: str) -> tuple[str, str] | None:
    """(file path, reader kind) of a document id, or None when it names no readable local file."""
    from corpora_index.readers import source_kind

    for pattern, kind in ((_JSONL_ID, "jsonl"), (_PARQUET_ID, "parquet")):
        m = pattern.match(document)
        if m and Path(m["path"]).is_file() and source_kind(Path(m["path"])) == kind:
            return m["path"], kind
    path = Path(document)
    if path.is_file() and source_kind(path) == "text":
        return document, "text"
    return None


def _read_documents(path: str, kind: str, ids: Iterable[str]) -> Mapping[str, str]:
    from corpora_index.readers import ReaderOptions, Source, read_source, source_kind

    wanted, found = set(ids), {}
    source = Source(path, source_kind(Path(path)), Path(path).stat().st_size)
    problems: list[CorpusProblem] = []  # a corrupt line elsewhere in the file does not concern us
    for doc in read_source(source, ReaderOptions(on_error="skip"), problems):
        if doc.id in wanted:
            found[doc.id] = doc.text
            if len(found) == len(wanted):
                break
    return found


def _snippet(w: _Wanted, text: str) -> CorpusSnippet:
    start, end = max(0, w.start - CONTEXT), min(len(text), w.end + CONTEXT)
    span = text[w.start : w.end]
    if len(span) > MAX_SPAN_TEXT:
        half = MAX_SPAN_TEXT // 2
        span = span[:half] + " […] " + span[-half:]
    shown = text[start : w.start] + span + text[w.end : end]
    span_start = w.start - start
    return CorpusSnippet(
        document=w.document,
        start=start,
        end=end,
        text=shown,
        span_start=span_start,
        span_end=span_start + len(span),
    )
