"""`contam replay guided`: the output contract, the partition rule and test, and every input error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from contam.cli.main import cli
from contam.errors import InputError
from contam.replay import SCHEMA_VERSION, ReplayResult, read_pairs, replay_guided
from contam.stats import paired_greater
from probes._generation import rouge_l

REF = "Natalia sold 48+24 = 72 clips altogether in April and May, so she sold 72 clips in all."
EXACT = REF + " #### 72"
NEAR = REF.replace("altogether", "in total")
NONE = "She sold some clips and then went home."


def _write(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _pair(partition: str, guided: str, general: str | None = NONE, **extra: Any) -> dict[str, Any]:
    row = {"partition": partition, "reference": REF, "guided": guided, **extra}
    if general is not None:
        row["general"] = general
    return row


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_output_contract_field_names(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_pair("test", EXACT), _pair("train", NONE, general=None, id="x")])
    data = json.loads(replay_guided(path).model_dump_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data) == {"schema_version", "kind", "input", "matcher", "instances", "partitions"}
    assert data["kind"] == "guided"
    assert set(data["input"]) == {"path", "sha256", "pairs"} and data["input"]["pairs"] == 2
    assert data["matcher"] == {
        "near_exact_min_similarity": 0.75,
        "paper_min_exact": 1,
        "paper_min_near_exact": 2,
    }
    first, second = data["instances"]
    assert set(first) == {"id", "partition", "line", "match", "guided", "general"}
    assert set(first["guided"]) == set(first["general"]) == {"rouge_l", "edit_similarity"}
    assert second["general"] is None and second["id"] == "x" and second["partition"] == "train"
    test, train = data["partitions"]
    assert set(test) == {"partition", "n", "counts", "contaminated", "p_value", "statistic", "note"}
    assert set(test["counts"]) == {"exact", "near_exact", "none"}
    assert test["partition"] == "test" and train["partition"] == "train"


def test_instances_are_labelled_and_scored(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_pair("t", EXACT), _pair("t", NEAR), _pair("t", NONE)])
    result = replay_guided(path)
    assert [i.match for i in result.instances] == ["exact", "near_exact", "none"]
    assert [i.id for i in result.instances] == ["1", "2", "3"]
    exact = result.instances[0]
    assert exact.guided.rouge_l == pytest.approx(rouge_l(EXACT, REF))
    assert exact.general is not None and exact.general.rouge_l == pytest.approx(rouge_l(NONE, REF))
    assert 0 <= exact.guided.edit_similarity <= 1
    (part,) = result.partitions
    assert part.n == 3 and (part.counts.exact, part.counts.near_exact, part.counts.none) == (1, 1, 1)


def test_default_id_is_the_line_number_counting_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.jsonl", [_pair("t", NONE), "", "   ", _pair("t", NONE), _pair("t", NONE, id="k")]
    )
    result = replay_guided(path)
    assert [(i.id, i.line) for i in result.instances] == [("1", 1), ("4", 4), ("k", 5)]
    assert result.input is not None and result.input.pairs == 3


@pytest.mark.parametrize(
    ("guided", "contaminated"),
    [
        ([EXACT, NONE, NONE], True),  # one exact
        ([NEAR, NEAR, NONE], True),  # two near-exact
        ([NEAR, NONE, NONE], False),  # one near-exact is not enough
        ([NONE, NONE, NONE], False),
    ],
)
def test_contaminated_is_the_papers_rule(tmp_path: Path, guided: list[str], contaminated: bool) -> None:
    path = _write(tmp_path / "p.jsonl", [_pair("t", g) for g in guided])
    (part,) = replay_guided(path).partitions
    assert part.contaminated is contaminated


def test_paired_test_when_every_instance_has_general(tmp_path: Path) -> None:
    guided = [EXACT, NEAR, NEAR, EXACT, NONE, NEAR]
    general = [NONE, NONE, "Natalia sold clips.", NONE, NONE, "In April and May she sold 72 clips."]
    path = _write(
        tmp_path / "p.jsonl", [_pair("t", g, general=h) for g, h in zip(guided, general, strict=True)]
    )
    (part,) = replay_guided(path).partitions
    expected = paired_greater([rouge_l(g, REF) for g in guided], [rouge_l(h, REF) for h in general])
    assert part.p_value == pytest.approx(expected.p_value)
    assert part.statistic is not None and part.statistic.name == "wilcoxon_signed_rank"
    assert part.statistic.n == 6 and part.statistic.effect == pytest.approx(expected.effect)
    assert part.note is None


def test_no_paired_test_when_any_instance_lacks_general(tmp_path: Path) -> None:
    rows = [_pair("a", EXACT), _pair("a", NEAR, general=None), _pair("b", NONE), _pair("b", NEAR)]
    rows.append({"partition": "c", "reference": REF, "guided": NONE, "general": None})  # null = absent
    by_name = {p.partition: p for p in replay_guided(_write(tmp_path / "p.jsonl", rows)).partitions}
    assert by_name["a"].p_value is None and by_name["a"].statistic is None
    assert (
        by_name["a"].note is not None and "1 of 2 instances have no general completion" in by_name["a"].note
    )
    assert by_name["b"].p_value is not None and by_name["b"].note is None
    assert by_name["c"].p_value is None and by_name["c"].note is not None


def test_line_separators_inside_strings_do_not_split_a_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [_pair("t", "one\u2028two\x85three"), _pair("t", NONE)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows), encoding="utf-8")
    assert [(p.guided, p.line) for p in read_pairs(path)] == [("one\u2028two\x85three", 1), (NONE, 2)]


def test_same_id_in_two_partitions_is_fine(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_pair("a", NONE, id="1"), _pair("b", NONE, id="1")])
    assert [p.n for p in replay_guided(path).partitions] == [1, 1]


@pytest.mark.parametrize(
    ("bad_line", "field", "message"),
    [
        ('{"partition": "t", "reference": "a b"', None, "malformed JSON"),
        ('["t", "a b", "a b"]', None, "expected a JSON object, got an array"),
        ({"partition": "t", "guided": "a"}, "reference", "missing"),
        ({"partition": "t", "reference": "a b", "guided": None}, "guided", "is null"),
        ({"partition": "t", "reference": "a b", "guided": 3}, "guided", "expected a string, got a number"),
        ({"partition": "t", "reference": "a b", "guided": "a", "general": ["x"]}, "general", "got an array"),
        ({"partition": "t", "reference": "a b", "guided": "a", "id": 7}, "id", "expected a string"),
        ({"partition": "t", "reference": "a b", "guided": "a", "score": 1}, "score", "unknown field"),
        ({"partition": " ", "reference": "a b", "guided": "a"}, "partition", "is empty"),
        ({"partition": "t", "reference": "a b", "guided": "a", "id": ""}, "id", "is empty"),
        ({"partition": "t", "reference": "?!", "guided": "a"}, "reference", "has no words"),
        ({"partition": "t", "reference": "a b", "guided": "a", "id": "k"}, "id", "duplicate id 'k'"),
    ],
)
def test_a_malformed_line_names_its_line_and_field(
    tmp_path: Path, bad_line: Any, field: str | None, message: str
) -> None:
    good = {"partition": "t", "reference": "a b", "guided": "a b", "id": "k"}
    path = _write(tmp_path / "p.jsonl", [good, "", bad_line, good | {"id": "later"}])
    with pytest.raises(InputError) as caught:
        read_pairs(path)
    assert caught.value.path == str(path) and caught.value.line == 3 and caught.value.field == field
    assert message in str(caught.value) and f"{path}:3" in str(caught.value)


def test_duplicate_id_names_the_first_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.jsonl", [_pair("t", NONE, id="k"), _pair("t", NONE), _pair("t", NONE, id="k")]
    )
    with pytest.raises(InputError, match=r"first on line 1") as caught:
        read_pairs(path)
    assert caught.value.line == 3


def test_a_default_id_clashing_with_a_given_one_is_a_duplicate(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [_pair("t", NONE, id="2"), _pair("t", NONE)])
    with pytest.raises(InputError, match=r"duplicate id '2'") as caught:
        read_pairs(path)
    assert caught.value.line == 2


@pytest.mark.parametrize("content", [b"", b"\n  \n\n"])
def test_a_file_without_pairs_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="no pairs") as caught:
        read_pairs(path)
    assert caught.value.path == str(path)


def test_non_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(_pair("t", NONE)).encode() + b'\n{"partition": "\xff"}\n')
    with pytest.raises(InputError, match="UTF-8") as caught:
        read_pairs(path)
    assert caught.value.line == 2


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read") as caught:
        read_pairs(tmp_path / "nope.jsonl")
    assert caught.value.path == str(tmp_path / "nope.jsonl")


def test_result_is_frozen_strict_and_round_trips(tmp_path: Path) -> None:
    result = replay_guided(_write(tmp_path / "p.jsonl", [_pair("t", EXACT), _pair("t", NEAR, general=None)]))
    out = tmp_path / "sub" / "r.json"
    result.write(out)
    assert ReplayResult.read(out) == result
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.json"]  # no temporary file left
    with pytest.raises(ValidationError):
        result.instances[0].match = "none"  # type: ignore[misc]
    data = json.loads(out.read_text())
    data["instances"][0]["extra"] = 1
    with pytest.raises(ValidationError):
        ReplayResult.model_validate(data)


def test_cli_writes_the_result_and_prints_each_partition(run, tmp_path: Path) -> None:
    pairs = _write(
        tmp_path / "p.jsonl", [_pair("test", EXACT), _pair("test", NONE), _pair("train", NONE, general=None)]
    )
    out = tmp_path / "r.json"
    result = run("replay", "guided", "--input", str(pairs), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert ReplayResult.read(out).partitions[0].counts.exact == 1
    assert (
        "test: n=2  exact=1 near_exact=0 none=1  paper rule: contaminated  paired test p = " in result.output
    )
    assert "train: n=1" in result.output and "no paired test" in result.output
    quiet = run("replay", "guided", "--input", str(pairs), "--out", str(out), "--quiet")
    assert quiet.exit_code == 0 and quiet.output == ""


def test_cli_malformed_line_exits_2_naming_file_line_and_field(run, tmp_path: Path) -> None:
    pairs = _write(
        tmp_path / "p.jsonl", [_pair("t", NONE), {"partition": "t", "reference": "a", "guided": 1}]
    )
    out = tmp_path / "r.json"
    result = run("replay", "guided", "--input", str(pairs), "--out", str(out))
    assert result.exit_code == 2
    assert f"error: {pairs}:2: field 'guided': expected a string, got a number" in result.output
    assert not out.exists()


def test_cli_empty_input_exits_2(run, tmp_path: Path) -> None:
    empty = tmp_path / "p.jsonl"
    empty.write_text("", encoding="utf-8")
    result = run("replay", "guided", "--input", str(empty), "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 2 and "no pairs" in result.output


def test_cli_checks_out_before_reading(run, tmp_path: Path) -> None:
    pairs = _write(tmp_path / "p.jsonl", [_pair("t", NONE)])
    result = run("replay", "guided", "--input", str(pairs), "--out", str(tmp_path))
    assert result.exit_code == 2 and "--out" in result.output
    missing = run(
        "replay", "guided", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "r.json")
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output
    usage = run("replay", "guided", "--out", str(tmp_path / "r.json"))
    assert usage.exit_code == 2 and "--input" in usage.output


def test_replay_scores_a_completion_as_the_guided_probe_does(tmp_path: Path) -> None:
    """A completion that goes on past the continuation scores as the probe scores it: on its
    first n + max(2, n/10) words only, so replay and a scan agree."""
    from contam.replay import score_pairs
    from probes._generation import rouge_l
    from probes.guided import compared_head

    reference = "she paid 12 dollars for the blue notebook and two pens"
    guided = reference + " and then she went home to write a long letter to her friend"
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"partition": "test", "reference": reference, "guided": guided}) + "\n")
    [instance] = score_pairs(read_pairs(path)).instances
    assert instance.guided.rouge_l == pytest.approx(rouge_l(compared_head(guided, reference), reference))
    assert instance.guided.rouge_l > rouge_l(guided, reference)
