"""Benchmark loading: every supported format, and every bad input failing with its location."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contam.benchmarks import FieldMap, load_benchmark
from contam.errors import BenchmarkError


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


QA_ROWS = [
    {"id": "a", "question": "What is 2+2?", "answer": "4", "split": "test"},
    {"id": "b", "question": "What is 3+3?", "answer": "6", "split": "test"},
    {"id": "c", "question": "What is 1+1?", "answer": "2", "split": "train"},
]


def test_jsonl_qa_with_partition_column(tmp_path: Path) -> None:
    bench = load_benchmark(str(write_jsonl(tmp_path / "b.jsonl", QA_ROWS)))
    assert bench.format == "qa"
    assert bench.counts == {"test": 2, "train": 1}
    item = bench.partition("test").items[0]
    assert (item.id, item.prompt, item.reference) == ("a", "What is 2+2?", "4")
    assert item.text == "What is 2+2?\n4"


def test_explicit_field_mapping_and_join(tmp_path: Path) -> None:
    rows = [{"q": "Q1", "a": "A1", "k": "x1"}, {"q": "Q2", "a": "A2", "k": "x2"}]
    path = write_jsonl(tmp_path / "dev.jsonl", rows)
    fields = FieldMap.parse(["prompt=q", "reference=a", "id=k"]).model_copy(update={"join": " => "})
    bench = load_benchmark(str(path), fields=fields)
    assert bench.counts == {"dev": 2}  # no partition column: the file is the partition
    assert bench.partition("dev").items[1].text == "Q2 => A2"
    assert bench.partition("dev").ids == ("x1", "x2")


def test_one_partition_per_file_in_a_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "alpha"}, {"text": "beta"}])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "gamma"}])
    bench = load_benchmark(str(tmp_path))
    assert bench.counts == {"test": 1, "train": 2}
    assert bench.format == "text"
    assert bench.partition("train").ids == ("train-00000", "train-00001")


def test_csv_multiple_choice_with_letter_answers(tmp_path: Path) -> None:
    path = tmp_path / "mc.csv"
    path.write_text(
        "question,A,B,C,answer\nSky?,blue,green,red,A\nGrass?,blue,green,red,b\n", encoding="utf-8"
    )
    bench = load_benchmark(str(path), fields=FieldMap.parse(["prompt=question", "choices=A,B,C"]))
    assert bench.format == "mc"
    items = bench.partition("mc").items
    assert [i.answer_index for i in items] == [0, 1]
    assert items[0].choices == ("blue", "green", "red")
    assert items[0].text == "Sky?\nA. blue\nB. green\nC. red\nAnswer: A"


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(QA_ROWS), path)
    bench = load_benchmark(str(path))
    assert bench.counts == {"test": 2, "train": 1}


def test_hf_save_to_disk_folder(tmp_path: Path) -> None:
    import datasets  # a dev dependency: real save_to_disk output, not a hand-made imitation

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"text": "one"}, {"text": "two"}]),
            "validation": datasets.Dataset.from_list([{"text": "three"}]),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    bench = load_benchmark(str(tmp_path / "ds"))
    assert bench.counts == {"train": 2, "validation": 1}
    assert bench.partition("validation").items[0].text == "three"


def test_partition_selection_keeps_order_and_rejects_unknown(tmp_path: Path) -> None:
    path = str(write_jsonl(tmp_path / "b.jsonl", QA_ROWS))
    assert list(load_benchmark(path, partitions=["train", "test"]).partitions) == ["train", "test"]
    with pytest.raises(BenchmarkError, match=r"no partition 'dev'.*has: test, train"):
        load_benchmark(path, partitions=["dev"])


# --- bad input: each error names the file, the line or row, and the field -------------------


def test_malformed_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "fine"}\n{"text": broken}\n', encoding="utf-8")
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: malformed JSON")


def test_missing_column_names_row_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": "x", "a": "y"}, {"q": "z"}])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path), fields=FieldMap.parse(["prompt=q", "reference=a"]))
    assert (err.value.line, err.value.field) == (2, "a")
    assert "missing column 'a'" in str(err.value)


def test_missing_mapped_column_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("question\nhello\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"row 1: field 'body': missing column 'body'"):
        load_benchmark(str(path), fields=FieldMap.parse(["text=body"]))


def test_empty_partition_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [{"text": "a", "split": "test"}, {"text": "b", "split": " "}])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert (err.value.line, err.value.field) == (2, "split")
    assert "empty partition" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match="empty partition 'empty': the file has no rows") as err:
        load_benchmark(str(path))
    assert err.value.path == str(path)


def test_empty_file_in_a_folder_is_an_error_not_a_missing_partition(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "alpha"}, {"text": "beta"}])
    (tmp_path / "test.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(BenchmarkError, match="empty partition 'test'") as err:
        load_benchmark(str(tmp_path))
    assert err.value.path == str(tmp_path / "test.jsonl")


def test_header_only_csv_in_a_folder_is_an_empty_partition(tmp_path: Path) -> None:
    (tmp_path / "dev.csv").write_text("text\n", encoding="utf-8")
    write_jsonl(tmp_path / "train.jsonl", [{"text": "alpha"}])
    with pytest.raises(BenchmarkError, match="empty partition 'dev'") as err:
        load_benchmark(str(tmp_path))
    assert err.value.path == str(tmp_path / "dev.csv")


def test_empty_split_in_hf_save_to_disk_folder(tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"text": "one"}, {"text": "two"}]),
            "test": datasets.Dataset.from_dict({"text": []}),
        }
    )
    dd.save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(BenchmarkError, match="empty split 'test'") as err:
        load_benchmark(str(tmp_path / "ds"))
    assert err.value.path == str(tmp_path / "ds" / "test")


def test_empty_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "a"}, {"text": "   "}])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert (err.value.line, err.value.field) == (2, "text")


def test_answer_index_out_of_range(tmp_path: Path) -> None:
    rows = [
        {"question": "q1", "choices": ["a", "b"], "answer": 1},
        {"question": "q2", "choices": ["a", "b"], "answer": 2},
    ]
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert (err.value.line, err.value.field) == (2, "answer")
    assert "out of range for 2 choices" in str(err.value)


def test_integral_float_answer_is_an_index(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mc.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": 1.0}])
    (item,) = load_benchmark(str(path)).items()
    assert item.answer_index == 1
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": 0.5}])
    with pytest.raises(BenchmarkError, match="neither an index nor a letter"):
        load_benchmark(str(bad))


def test_empty_id_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "text": "x"}, {"id": "  ", "text": "y"}])
    with pytest.raises(BenchmarkError, match="empty id") as err:
        load_benchmark(str(path))
    assert (err.value.line, err.value.field) == (2, "id")


def test_bad_answer_letter(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mc.jsonl", [{"question": "q", "choices": ["a", "b"], "answer": "maybe"}])
    with pytest.raises(BenchmarkError, match="neither an index nor a letter"):
        load_benchmark(str(path))


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"id": "x", "text": "a"}, {"id": "y", "text": "b"}, {"id": "x", "text": "c"}]
    )
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert err.value.line == 3
    assert "duplicate id 'x'" in str(err.value) and "line 1" in str(err.value)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert err.value.line == 2
    assert "not valid UTF-8" in str(err.value)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "arr.jsonl"
    path.write_text('{"text": "a"}\n["text"]\n', encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r":2: expected a JSON object"):
        load_benchmark(str(path))


def test_unknown_field_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="unknown item field 'question'"):
        FieldMap.parse(["question=q"])
    with pytest.raises(BenchmarkError, match="no such file"):
        load_benchmark(str(tmp_path / "nope.jsonl"))


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"unsupported file type '\.txt'"):
        load_benchmark(str(path))


# --- built-ins over the real files --------------------------------------------------------------


def test_builtin_gsm8k_counts() -> None:
    bench = load_benchmark("gsm8k")
    assert bench.counts == {"train": 7473, "test": 1319}
    item = bench.partition("test").items[0]
    assert item.reference is not None and item.reference.rstrip().endswith("#### 18")


def test_builtin_truthfulqa_mc_is_seeded_and_valid() -> None:
    first = load_benchmark("truthfulqa-mc")
    again = load_benchmark("truthfulqa-mc")
    items = first.partition("validation").items
    assert len(items) == 817
    assert [i.choices for i in items] == [i.choices for i in again.partition("validation").items]
    for item in items:
        assert item.choices is not None and item.answer_index is not None
        assert 2 <= len(item.choices) <= 4
    # the best answer does not always sit in the same slot
    assert len({i.answer_index for i in items}) == 4


def test_builtin_humaneval() -> None:
    bench = load_benchmark("humaneval")
    assert bench.counts == {"test": 164}
    item = bench.partition("test").items[0]
    assert item.id == "HumanEval/0" and item.text == (item.prompt or "") + (item.reference or "")


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    """U+2028 and U+0085 are legal raw inside JSON strings; a JSONL line ends at \\n only."""
    path = tmp_path / "b.jsonl"
    rows = [{"id": "a", "text": "one\u2028two\u0085three", "partition": "test"}, {"id": "b", "text": "x\r", "partition": "test"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    bench = load_benchmark(str(path))
    assert [i.text for i in bench.partitions["test"].items] == ["one\u2028two\u0085three", "x\r"]
