"""Match labels for guided completion: did a completion reproduce the reference continuation?

Pure and deterministic; no model. Texts are compared as words (`_generation.words`: NFKC, lower
case, punctuation and whitespace dropped), so case, punctuation, whitespace and code indentation
never matter. With n the number of words of the reference:

- **exact**: the completion's first n words are the reference's words. A completion that goes on
  past the continuation still counts.
- **near_exact**: some prefix of the completion (at most n / `NEAR_EXACT_MIN_SIMILARITY` words,
  so trailing text is never held against it) has a word-level edit similarity
  (`_generation.edit_similarity`, 1 - Levenshtein / the longer length) of at least
  `NEAR_EXACT_MIN_SIMILARITY` = 0.75 with the reference: most words kept, in order, with small
  edits (a word changed, a synonym, a word or two added or dropped, the last words cut off, a short
  clause moved). Of the best prefixes the longest is judged, so a changed last word is seen.
- **Numbers**: that prefix must write no number the reference lacks: its numbers (tokens of
  digits, and the words zero and two to twenty) must be a subsequence of the reference's. A changed, added or
  reordered number is `none`, however small the edit: in math, and in templated items generally,
  the numbers are what is item-specific (a GSM8K solution with one number changed is a generic
  solution, not a copy). A dropped number is an ordinary deletion.
- **none**: anything else, and always when the reference or the completion has no word (a match
  of nothing is no evidence).

The rule is about form, not meaning: a flipped claim ("No, there is no evidence" → "Yes, there
is evidence") or a changed answer word is near_exact when the edit is small. Two known limits:
an operator (`+` for `-`) is punctuation, so a changed operator with every word kept is exact; and
whitespace that separates words matters (`5 x $20` written `5x$20` is one word fewer).

**Measured agreement.** 83 examples labelled by hand before the matcher was written
(`tests/unit/data/match_labels.jsonl`: GSM8K-like solutions and questions, TruthfulQA-like
answers, HumanEval-like code, prose; trailing text, case and punctuation, one word changed,
synonyms, moved clauses, truncations, paraphrases, unrelated text, changed numbers, re-indented
code). The matcher agrees on 80 of 83 (96.4%), with no exact/none confusion (rows: the hand label;
columns: the matcher's):

    hand label → matcher   exact  near_exact  none
    exact                     20           1     0   (whitespace removed inside `5 x $20`)
    near_exact                 1          22     1   (an operator changed; a variable renamed)
    none                       0           0    38

The threshold sits in the gap the labels leave. The most similar hand-labelled `none` that the
number check does not decide scores 0.68 (a seven-word phrase dropped of 21); the least similar
`near_exact` ones score 0.70 (a variable renamed three times in ten words), then 0.75. Of 0.70
and 0.75 the stricter is taken: the paper's rule flags a partition on two near-exact matches, so
a false near-exact costs more than a missed one (which still shows in the ROUGE-L test).
`tests/unit/test_text_match.py` measures this again and fails if it drifts from
`MEASURED_AGREEMENT`.

`paper_rule` is Golchin & Surdeanu's partition rule: contaminated when at least one instance is
exact or at least two are near-exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from probes._generation import edit_similarity, words

MatchLabel = Literal["exact", "near_exact", "none"]
LABELS: tuple[MatchLabel, ...] = ("exact", "near_exact", "none")

# The least word-level edit similarity of a near-exact match: one edit in four words, three in twelve.
NEAR_EXACT_MIN_SIMILARITY = 0.75

# Number words read as numbers by the number check ("three" and "3" are the same number). "one" is
# left out: it is as often a pronoun ("one of the most ...").
_NUMBER_NAMES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
NUMBER_WORDS: Mapping[str, str] = {word: str(n) for n, word in enumerate(_NUMBER_NAMES) if word != "one"}

# (agreeing, labelled) on tests/unit/data/match_labels.jsonl; the test recomputes it.
MEASURED_AGREEMENT = (80, 83)

# Golchin & Surdeanu's partition rule.
PAPER_MIN_EXACT = 1
PAPER_MIN_NEAR_EXACT = 2


def match_label(completion: str, reference: str) -> MatchLabel:
    """`exact`, `near_exact` or `none`: how closely `completion` reproduces `reference` (the rule is
    in the module docstring)."""
    ref = words(reference)
    if not ref:
        return "none"
    cand = words(completion)
    if cand[: len(ref)] == ref:
        return "exact"
    # A prefix shorter than t*n or longer than n/t words cannot reach similarity t.
    shortest = max(1, math.ceil(NEAR_EXACT_MIN_SIMILARITY * len(ref)))
    longest = min(len(cand), math.floor(len(ref) / NEAR_EXACT_MIN_SIMILARITY))
    best, best_k = -1.0, 0
    for k in range(shortest, longest + 1):
        similarity = edit_similarity(" ".join(cand[:k]), reference)
        if similarity >= best:  # ties go to the longer prefix
            best, best_k = similarity, k
    if best < NEAR_EXACT_MIN_SIMILARITY:
        return "none"
    if not _is_subsequence(_numbers(cand[:best_k]), _numbers(ref)):
        return "none"
    return "near_exact"


def paper_rule(counts: Mapping[str, int]) -> bool:
    """Golchin & Surdeanu's rule: a partition is contaminated with at least `PAPER_MIN_EXACT` exact or
    at least `PAPER_MIN_NEAR_EXACT` near-exact matches. `counts` maps labels to counts; a missing
    label counts 0, a key that is not a label is an error."""
    unknown = set(counts) - set(LABELS)
    if unknown:
        raise ValueError(f"not match labels: {sorted(unknown)} (labels are {', '.join(LABELS)})")
    return counts.get("exact", 0) >= PAPER_MIN_EXACT or counts.get("near_exact", 0) >= PAPER_MIN_NEAR_EXACT


def _numbers(tokens: Sequence[str]) -> list[str]:
    out = []
    for token in tokens:
        if token.isdigit():
            out.append(str(int(token)) if token.isascii() else token)
        elif token in NUMBER_WORDS:
            out.append(NUMBER_WORDS[token])
    return out


def _is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    rest = iter(haystack)
    return all(any(item == other for other in rest) for item in needle)
