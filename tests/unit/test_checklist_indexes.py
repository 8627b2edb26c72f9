"""Corpus indexes in a checklist: each benchmark is queried against every index, the evidence of
several indexes is merged per item, and indexes built with other settings are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contam.checklist import load_checklist, run_checklist
from contam.errors import InputError
from corpora_index import build_index, expand_sources
from corpora_index.settings import IndexSettings
from tests.unit.test_checklist_run import make_folder


def index_of(folder: Path, name: str, texts: list[str], settings: IndexSettings | None = None) -> Path:
    corpus = folder / f"{name}-corpus"
    corpus.mkdir()
    filler = " ".join(f"filler{k}" for k in range(80))
    (corpus / "web.txt").write_text("\n\n".join([filler, *texts, filler]), encoding="utf-8")
    out = folder / name
    build_index(expand_sources([corpus]), out, settings)
    return out


def items_of(folder: Path, partition: str) -> list[str]:
    rows = [json.loads(line) for line in (folder / "one.jsonl").read_text().splitlines()]
    return [r["text"] for r in rows if r["partition"] == partition]


def release(folder: Path, indexes: list[str]) -> Path:
    path = folder / "release.yaml"
    path.write_text(
        "model: mock:seen=none.json\n"
        "benchmarks:\n"
        "  - name: one.jsonl\n"
        "    reference: held\n"
        f"indexes: [{', '.join(indexes)}]\n"
        "probes: [loss]\n",
        encoding="utf-8",
    )
    return path


def test_items_verbatim_in_one_of_two_indexes_make_their_partition_contaminated(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    index_of(folder, "idx-a", items_of(folder, "fresh")[:4])  # 4 of 30: over the 10% share
    index_of(folder, "idx-b", [])
    result = run_checklist(
        load_checklist(release(folder, ["idx-a", "idx-b"])), out_dir=folder / "out", cache_path=None
    )
    lines = {line.partition: line for line in result.lines}
    assert lines["fresh"].verdict.value == "contaminated" and lines["fresh"].rule_id == "corpus_direct"
    assert lines["fresh"].key_evidence is not None and "4 of 30 items verbatim" in lines["fresh"].key_evidence
    assert lines["leaked"].verdict.value == "no_evidence"  # the mock saw nothing, no corpus has it
    [run] = result.benchmarks
    assert run.overlap == (str((folder / "idx-a").resolve()), str((folder / "idx-b").resolve()))
    report = json.loads((folder / "out" / "one" / "report.json").read_text())
    matched = {i["id"] for i in report["overlap"]["items"] if i["matched"]}
    assert matched == {f"fresh-{i}" for i in range(4)}


def test_indexes_with_other_settings_are_refused_at_their_line(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    index_of(folder, "idx-a", [])
    index_of(folder, "idx-b", [], IndexSettings(n=8))
    path = release(folder, ["idx-a", "idx-b"])
    with pytest.raises(InputError) as info:
        run_checklist(load_checklist(path), out_dir=folder / "out", cache_path=None)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), 5, "indexes")
    assert "differ" in info.value.message and "same settings" in info.value.message
    assert not (folder / "out").exists()
