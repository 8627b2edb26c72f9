"""The guided-completion matcher: agreement with hand labels, then each rule on its own."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from probes._text_match import (
    LABELS,
    MEASURED_AGREEMENT,
    NEAR_EXACT_MIN_SIMILARITY,
    match_label,
    paper_rule,
)

LABELLED = Path(__file__).parent / "data" / "match_labels.jsonl"


def _labelled() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        assert set(row) == {"reference", "completion", "label", "why"}, row
        assert row["label"] in LABELS, row
    return rows


def test_agreement_with_hand_labels() -> None:
    rows = _labelled()
    assert len(rows) >= 60
    confusion: Counter[tuple[str, str]] = Counter()
    disagreements = []
    for number, row in enumerate(rows, start=1):
        got = match_label(row["completion"], row["reference"])
        confusion[row["label"], got] += 1
        if got != row["label"]:
            disagreements.append(f"line {number}: human {row['label']}, matcher {got} ({row['why']})")
    agreeing = sum(confusion[label, label] for label in LABELS)
    print(f"\nagreement {agreeing}/{len(rows)} = {agreeing / len(rows):.1%}")
    print("human \\ matcher " + "".join(f"{label:>11}" for label in LABELS))
    for human in LABELS:
        print(f"{human:<16}" + "".join(f"{confusion[human, got]:>11}" for got in LABELS))
    print("\n".join(disagreements))
    assert agreeing / len(rows) >= 0.95
    assert confusion["exact", "none"] == 0 and confusion["none", "exact"] == 0
    # The module docstring states these numbers; they must not drift from what is measured.
    assert (agreeing, len(rows)) == MEASURED_AGREEMENT


def test_every_kind_of_text_is_labelled() -> None:
    counts = Counter(row["label"] for row in _labelled())
    assert min(counts[label] for label in LABELS) >= 15, counts


def test_exact_ignores_case_punctuation_whitespace_and_trailing_text() -> None:
    ref = "Natalia sold 48/2 = 24 clips in May."
    assert match_label(ref, ref) == "exact"
    assert match_label("NATALIA sold 48 / 2 = 24 clips, in may", ref) == "exact"
    assert match_label(ref + " Then she sold 72 more in June, 2024.", ref) == "exact"
    assert match_label("def f(x):\n\treturn x", "def f(x):\n    return x\n") == "exact"


def test_empty_texts_are_no_evidence() -> None:
    assert match_label("", "The cat sat on the mat.") == "none"
    assert match_label(" \n\t", "The cat sat on the mat.") == "none"
    assert match_label("The cat sat on the mat.", "") == "none"
    assert match_label("", "") == "none"
    assert match_label("?!", "...") == "none"


def test_threshold_is_one_edit_in_four_words() -> None:
    assert NEAR_EXACT_MIN_SIMILARITY == 0.75
    assert match_label("the treaty of versaille", "the treaty of versailles") == "near_exact"
    assert match_label("the pact of versailles", "the treaty of versailles") == "near_exact"
    assert match_label("a pact of versailles", "the treaty of versailles") == "none"  # two in four
    assert match_label("treaty of paris", "treaty of versailles") == "none"  # one in three
    letters = [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
    ]
    three = ["x" if i in (1, 5, 9) else w for i, w in enumerate(letters)]
    four = ["x" if i in (1, 4, 7, 10) else w for i, w in enumerate(letters)]
    assert match_label(" ".join(three), " ".join(letters)) == "near_exact"
    assert match_label(" ".join(four), " ".join(letters)) == "none"


def test_trailing_text_is_not_held_against_a_near_exact_match() -> None:
    ref = "the plot made no sense and I walked out before the final act"
    changed = ref.replace("no sense", "little sense")
    assert match_label(changed, ref) == "near_exact"
    assert match_label(changed + " of this long and tedious film about a family", ref) == "near_exact"


def test_truncation_most_is_near_exact_half_is_none() -> None:
    ref = "Nothing happens if you eat watermelon seeds; they pass through your digestive system."
    assert (
        match_label("Nothing happens if you eat watermelon seeds; they pass through your", ref)
        == "near_exact"
    )
    assert match_label("Nothing happens if you eat watermelon seeds.", ref) == "none"


def test_a_changed_or_added_number_is_none() -> None:
    ref = "He has 3 * 4 = 12 apples left, so he has 12 + 5 = 17 apples now. #### 17"
    assert match_label(ref.replace("#### 17", "#### 18"), ref) == "none"  # the last word: ties go long
    assert match_label(ref.replace("= 12 apples", "= 13 apples"), ref) == "none"
    assert match_label(ref.replace("12 apples left", "12 green apples left"), ref) == "near_exact"
    assert match_label(ref.replace("apples left,", "apples left, 2 each,"), ref) == "none"  # added
    assert match_label(ref.replace("12 + 5", "5 + 12"), ref) == "none"  # reordered


def test_a_dropped_number_is_an_ordinary_deletion() -> None:
    ref = "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May, so 72 clips in all."
    without_annotation = "Natalia sold 48+24 = 72 clips altogether in April and May, so 72 clips in all."
    assert match_label(without_annotation, ref) == "near_exact"
    assert match_label(without_annotation.replace("= 72", "= 70"), ref) == "none"


def test_number_words_are_numbers() -> None:
    ref = "She eats three for breakfast every morning and bakes muffins with four."
    assert match_label(ref.replace("three", "3"), ref) == "near_exact"
    assert match_label(ref.replace("three", "5"), ref) == "none"
    assert match_label(ref.replace("three", "five"), ref) == "none"


def test_reordering_halves_is_none() -> None:
    ref = "The Declaration was signed on August 2, although it was adopted on July 4."
    swapped = "The Declaration was adopted on July 4, although it was signed on August 2."
    assert match_label(swapped, ref) == "none"


def test_labels_are_the_public_three() -> None:
    assert LABELS == ("exact", "near_exact", "none")
    assert {
        match_label(c, r) for c, r in [("a b c d", "a b c d"), ("a b c x", "a b c d"), ("z", "a")]
    } == set(LABELS)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"exact": 1}, True),
        ({"exact": 0, "near_exact": 2, "none": 50}, True),
        ({"near_exact": 1, "none": 9}, False),
        ({"exact": 0, "near_exact": 0, "none": 0}, False),
        ({}, False),
    ],
)
def test_paper_rule(counts: dict[str, int], expected: bool) -> None:
    assert paper_rule(counts) is expected


def test_paper_rule_refuses_a_key_that_is_not_a_label() -> None:
    with pytest.raises(ValueError, match="near-exact"):
        paper_rule({"near-exact": 2})
