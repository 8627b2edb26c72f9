"""TS-Guessing (question-based and multiple choice) on the scripted mock backend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from contam.cache import CallCache
from contam.cli.main import cli
from contam.models.base import Completion, GenerateRequest, GenerateResult
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.report import ScanReport
from contam.results import ProbeResult
from contam.runner import Runner
from contam.stats import wilson_interval
from contam.types import Item, Partition
from probes.ts_guessing import (
    BINARY,
    MASK,
    NEAR_DUP,
    NO_WORD,
    NOT_MC,
    STOP_WORDS,
    Task,
    TSGuessingMCProbe,
    TSGuessingQBProbe,
    mask_word,
    masked_option,
    zipf,
)

ANIMALS = ["aardvark", "badger", "cheetah", "dolphin", "ermine", "ferret", "gazelle", "heron"]
PLACES = ["meadow", "canyon", "harbour", "glacier", "orchard", "lagoon", "quarry", "tundra"]
FRUITS = ["apricot", "banana", "cherry", "damson", "elderberry", "fig", "guava", "kumquat"]
TOOLS = ["anvil", "bradawl", "chisel", "drill", "easel", "file", "gimlet", "hammer"]


def reply(text: str) -> GenerateResult:
    return GenerateResult(completions=(Completion(text=text),))


def prompt_of(request: GenerateRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    return request.messages[-1].content


def qb_items(name: str, questions: Sequence[str]) -> Partition:
    return Partition(
        name, tuple(Item(id=f"{name}{i}", partition=name, text=q, prompt=q) for i, q in enumerate(questions))
    )


def mc_item(name: str, i: int, question: str, choices: Sequence[str], answer: int) -> Item:
    return Item(
        id=f"{name}{i}",
        partition=name,
        text=question,
        prompt=question,
        choices=tuple(choices),
        answer_index=answer,
    )


def mc_items(name: str, offset: int, n: int) -> Partition:
    """`n` four-option items with single-word options (no near duplicates), answers varying."""
    items = []
    for k in range(n):
        i = k + offset
        a, p = ANIMALS[i % 8], PLACES[(i // 8) % 8]
        choices = [f"{FRUITS[i % 8]} tree", f"{TOOLS[i % 8]} shed", f"{p} wall", f"{a} den"]
        items.append(mc_item(name, k, f"Where does the {a} of the {p} hide?", choices, k % 4))
    return Partition(name, tuple(items))


def recording(
    answer: Callable[[GenerateRequest], str] = lambda r: "",
) -> tuple[MockModel, list[GenerateRequest]]:
    seen: list[GenerateRequest] = []

    def generate(request: GenerateRequest) -> GenerateResult:
        seen.append(request)
        return reply(answer(request))

    return MockModel(generate_fn=generate), seen


async def run(
    probe: TSGuessingQBProbe | TSGuessingMCProbe,
    part: Partition,
    model: MockModel | Runner,
    reference: Partition | None = None,
    seed: int = 0,
) -> ProbeResult:
    return await probe.run(part, model, ProbeContext("b", reference=reference, seed=seed))


# -- the word to mask ----------------------------------------------------------------------------


def test_the_rarest_eligible_word_is_masked() -> None:
    q = "What happens to you if you eat watermelon seeds?"
    assert zipf("watermelon") < zipf("seeds") < zipf("happens")
    m = mask_word(q)
    assert m is not None and m.word == "watermelon" and m.zipf == zipf("watermelon")
    assert m.text == f"What happens to you if you eat {MASK} seeds?" and m.start == q.index("watermelon")


def test_the_word_is_matched_whole_never_inside_another() -> None:
    q = "Does the pattern of a tern's flight repeat?"  # "tern" inside "pattern", and before it
    assert zipf("tern") < zipf("pattern")
    m = mask_word("Does the pattern of a tern flight repeat?")
    assert m is not None and m.word == "tern"
    assert m.text == f"Does the pattern of a {MASK} flight repeat?"
    # A word joined by an apostrophe is not a word of its own: "tern's" is passed over.
    assert zipf("tern") < zipf("repeat") < zipf("pattern") < zipf("flight")
    m = mask_word(q)
    assert m is not None and m.word == "repeat" and m.text == f"Does the pattern of a tern's flight {MASK}?"


def test_a_tie_goes_to_the_first_occurrence() -> None:
    assert zipf("florbix") == zipf("zanthup") == 0.0
    m = mask_word("Is florbix or zanthup older?")
    assert m is not None and m.word == "florbix" and m.text == f"Is {MASK} or zanthup older?"
    m = mask_word("Is zanthup or florbix older?")
    assert m is not None and m.word == "zanthup"


def test_short_words_stop_words_and_word_pieces_are_not_eligible() -> None:
    assert zipf("nap") < zipf("cats")
    m = mask_word("Why do cats nap?")  # "nap" is rarer but has 3 letters
    assert m is not None and m.word == "cats"
    assert {"would", "have", "been", "there", "these", "which"} <= STOP_WORDS
    assert mask_word("Which of these would have been over there?") is None
    assert zipf("wasn") < zipf("sailor")
    m = mask_word("Why wasn't the sailor rescued?")  # not "wasn", a piece of "wasn't"
    assert m is not None and m.word == "sailor"
    m = mask_word("Is a well-known walrus in 1999 ok?")  # not "well"/"known", nor digits
    assert m is not None and m.word == "walrus"


def test_a_repeated_word_is_not_masked_since_its_copy_gives_it_away() -> None:
    assert zipf("zebra") < zipf("horse")
    m = mask_word("Is a zebra a Zebra or a horse?")
    assert m is not None and m.word == "horse"
    assert mask_word("Are all dogs dogs?") is None


async def test_an_item_without_an_eligible_word_is_unscored_with_the_reason() -> None:
    part = qb_items("p", ["Who are you?", "Why do cats nap?"])
    model, _ = recording()
    result = await run(TSGuessingQBProbe(), part, model)
    assert [u.id for u in result.unscored] == ["p0"] and result.unscored[0].reason == NO_WORD
    assert [s.id for s in result.items] == ["p1"]
    assert any("1 of 2 items skipped" in n and NO_WORD in n for n in result.notes)


def test_the_question_is_the_prompt_when_there_is_one_else_the_text() -> None:
    with_prompt = Item(id="a", partition="p", text="Aardvark? The answer.", prompt="Why do cats nap?")
    task = TSGuessingQBProbe().task(with_prompt, ProbeContext("b"))
    assert isinstance(task, Task) and task.target == "cats" and "Aardvark" not in task.completion
    plain = Item(id="b", partition="p", text="Why do cats nap?")
    task = TSGuessingQBProbe().task(plain, ProbeContext("b"))
    assert isinstance(task, Task) and task.target == "cats"


# -- prompts in both forms -----------------------------------------------------------------------


async def test_qb_prompts_in_completion_and_chat_form() -> None:
    part = qb_items("p", ["Why do cats nap?"])
    model, asked = recording()
    result = await run(TSGuessingQBProbe(), part, model)
    [req] = asked
    assert req.prompt == (
        "One word of the benchmark question below has been replaced by [MASK]. "
        "Fill in [MASK] with the missing word.\n\n"
        "Question: Why do [MASK] nap?\n"
        "Answer:"
    )
    assert req.messages is None and req.stop == () and req.temperature == 0.0 and req.max_tokens == 8
    assert req.seed is None and result.params["form_used"] == "completion" and "seed" not in result.params

    model, asked = recording()
    result = await run(TSGuessingQBProbe.from_options({"form": "chat"}), part, model)  # type: ignore[arg-type]
    [req] = asked
    assert req.prompt is None and req.messages is not None and len(req.messages) == 1
    assert req.messages[0].role == "user"
    assert req.messages[0].content == (
        "One word of this question from a benchmark has been replaced by [MASK]. Which word was it? "
        "Reply with that single word and nothing else.\n\n"
        "Question: Why do [MASK] nap?"
    )
    assert req.stop == () and result.params["form_used"] == "chat"


async def test_mc_prompts_in_completion_and_chat_form() -> None:
    item = mc_item("p", 0, "Where do badgers live?", ["In setts", "In trees", "In the sea"], 0)
    part = Partition("p", (item,))
    model, asked = recording()
    await run(TSGuessingMCProbe(), part, model)
    [req] = asked
    masked = masked_option(item, 0, "ts_guessing_mc")
    assert masked in (1, 2)
    letter = "BC"[masked - 1]
    options = {1: "A. In setts\nB. [MASK]\nC. In the sea", 2: "A. In setts\nB. In trees\nC. [MASK]"}[masked]
    assert req.prompt == (
        f"A multiple-choice question from a benchmark, with option {letter} hidden as [MASK].\n\n"
        f"Question: Where do badgers live?\n{options}\n\n"
        f"Fill in [MASK] with the text of option {letter}.\n{letter}."
    )
    assert "A. In setts" in req.prompt and req.stop == () and req.max_tokens == 32

    chat_model = MockModel(chat_only=True, generate_fn=lambda r: reply(""))
    runner = Runner(chat_model)
    result = await run(TSGuessingMCProbe(), part, runner)  # auto: a chat-only model gets chat
    assert result.params["form_used"] == "chat"
    [(_, sent)] = chat_model.calls
    content = json.loads(sent)["messages"][0]["content"]
    assert content == (
        f"Here is a multiple-choice question from a benchmark, with option {letter} hidden as [MASK]. "
        f"From what you know of the benchmark, fill in option {letter}. It is not the same as any option "
        f"shown. Reply with the text of option {letter} only.\n\n"
        f"Question: Where do badgers live?\n{options}"
    )


async def test_a_forced_form_the_model_cannot_serve_skips_the_probe() -> None:
    chat_only = MockModel(chat_only=True)
    for cls in (TSGuessingQBProbe, TSGuessingMCProbe):
        result = await run(
            cls.from_options({"form": "completion"}), qb_items("p", ["Why do cats nap?"]), chat_only
        )  # type: ignore[arg-type]
        assert result.skipped is not None and "chat-only" in result.skipped and not result.items
    assert chat_only.calls == []


# -- the multiple-choice target ------------------------------------------------------------------


def test_the_mc_target_is_a_wrong_option_never_the_answer() -> None:
    picked: dict[tuple[int, int], set[int]] = {}
    for seed in range(40):
        for n_choices in (2, 3, 4, 5):
            for answer in range(n_choices):
                for k in range(5):
                    item = mc_item("p", k, "Q?", [f"option {w}" for w in "vwxyz"[:n_choices]], answer)
                    index = masked_option(item, seed, "ts_guessing_mc")
                    assert index is not None and index != answer and 0 <= index < n_choices
                    picked.setdefault((n_choices, answer), set()).add(index)
    # Over seeds and items, every wrong option is drawn.
    for (n_choices, answer), indices in picked.items():
        assert indices == set(range(n_choices)) - {answer}


async def test_the_guess_is_scored_against_the_masked_wrong_option_not_the_answer() -> None:
    part = mc_items("p", 0, 12)
    by_question = {item.prompt: item for item in part.items}

    def answer_correct(request: GenerateRequest) -> str:
        item = by_question[re.search(r"Question: (.*)", prompt_of(request)).group(1)]  # type: ignore[union-attr]
        return (item.choices or ())[item.answer_index or 0]

    model, _ = recording(answer_correct)
    result = await run(TSGuessingMCProbe(), part, model)
    assert len(result.items) == 12 and all(s.score == 0.0 for s in result.items)
    for s in result.items:
        item = next(i for i in part.items if i.id == s.id)
        assert s.detail["target"] != (item.choices or ())[item.answer_index or 0]
        assert s.detail["masked_index"] != item.answer_index


async def test_yes_no_true_false_and_near_duplicate_items_are_skipped_with_counts() -> None:
    items = [
        mc_item("p", 0, "Is it?", ["Yes", "No"], 0),
        mc_item("p", 1, "Is it so?", ["yes.", "no", "Yes!"], 1),
        mc_item("p", 2, "True or not?", ["True", "False"], 1),
        mc_item(
            "p",
            3,
            "Where?",
            [
                "The cat sat on the mat in the hall today",
                "The cat sat on the mat in the hall tonight",
                "Nowhere",
            ],
            2,
        ),
        mc_item("p", 4, "Which?", ["Red", "red.", "Blue"], 2),
        Item(id="p5", partition="p", text="Not multiple choice", prompt="Why do cats nap?"),
        mc_item("p", 6, "Where do badgers live?", ["In setts", "In trees", "In the sea"], 0),
        mc_item("p", 7, "Yes or no or maybe?", ["Yes", "No", "Maybe"], 2),  # not only yes/no
    ]
    model, asked = recording()
    result = await run(TSGuessingMCProbe(), Partition("p", tuple(items)), model)
    reasons = {u.id: u.reason for u in result.unscored}
    assert reasons == {"p0": BINARY, "p1": BINARY, "p2": BINARY, "p3": NEAR_DUP, "p4": NEAR_DUP, "p5": NOT_MC}
    assert [s.id for s in result.items] == ["p6", "p7"] and len(asked) == 2
    [note] = [n for n in result.notes if "skipped" in n]
    assert note.startswith("6 of 8 items skipped")
    assert f"{BINARY} (3)" in note and f"{NEAR_DUP} (2)" in note and f"{NOT_MC} (1)" in note


# -- normalisation of the guess ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "hit"),
    [
        (" cats", True),
        ("Cats.", True),
        ("**CATS**", True),
        ("cats, since they sleep a lot", True),  # the first word is the guess
        ("\ncats", True),
        ("cat", False),
        ("The cats", False),
        ("", False),
    ],
)
async def test_qb_exact_match_after_normalisation(answer: str, hit: bool) -> None:
    model, _ = recording(lambda r: answer)
    result = await run(TSGuessingQBProbe(), qb_items("p", ["Why do cats nap?"]), model)
    [s] = result.items
    assert s.score == float(hit) and s.detail["word"] == "cats" and s.detail["answer"] == answer


async def test_mc_exact_match_after_normalisation_and_rouge_in_detail() -> None:
    item = mc_item("p", 0, "Where do badgers live?", ["In setts", "In the deep blue sea", "In trees"], 0)
    index = masked_option(item, 0, "ts_guessing_mc")
    assert index is not None
    letter, target = "ABC"[index], (item.choices or ())[index]
    cases = {
        target: (1.0, 1.0),
        f" {target.upper()}!": (1.0, 1.0),
        f"{letter}. {target}\nbecause I remember": (1.0, 1.0),
        f"Option {letter}: {target}": (1.0, 1.0),
        "In setts": (0.0, None),
        f"{target} probably": (0.0, None),
    }
    for answer, (score, rouge) in cases.items():
        model, _ = recording(lambda r, a=answer: a)  # type: ignore[misc]
        [s] = (await run(TSGuessingMCProbe(), Partition("p", (item,)), model)).items
        assert s.score == score, answer
        assert s.detail["exact"] is (score == 1.0) and s.detail["target"] == target
        if rouge is not None:
            assert s.detail["rouge_l"] == pytest.approx(rouge)
        else:
            assert 0.0 <= s.detail["rouge_l"] < 1.0


# -- the partition statistic ---------------------------------------------------------------------


def questions(templates: Sequence[str]) -> list[str]:
    """Per template each animal and each place once, so a question with any word masked is unique."""
    return [t.format(a=ANIMALS[i], p=PLACES[(i + k) % 8]) for k, t in enumerate(templates) for i in range(8)]


SEEN_Q = questions(
    ["Why does the {a} chase the {p}?", "When did a {a} reach the {p}?", "How can the {a} leave its {p}?"]
)
UNSEEN_Q = questions(
    ["Why does the {a} fear the {p}?", "When did a {a} paint the {p}?", "How can the {a} clean its {p}?"]
)


def knows_questions(questions: Sequence[str]) -> Callable[[GenerateRequest], GenerateResult]:
    """A model that fills the mask in any of `questions` and knows nothing else."""

    def generate(request: GenerateRequest) -> GenerateResult:
        masked = re.search(r"Question: (.*)", prompt_of(request)).group(1)  # type: ignore[union-attr]
        pattern = re.escape(masked).replace(re.escape(MASK), r"(\w+)")
        for q in questions:
            found = re.fullmatch(pattern, q)
            if found:
                return reply(" " + found.group(1))
        return reply(" something")

    return generate


def knows_options(items: Sequence[Item]) -> Callable[[GenerateRequest], GenerateResult]:
    """A model that recalls every option of `items`; for other items it knows only the answer."""
    seen = {item.prompt: item for item in items}

    def generate(request: GenerateRequest) -> GenerateResult:
        text = prompt_of(request)
        question = re.search(r"Question: (.*)", text).group(1)  # type: ignore[union-attr]
        letter = re.search(r"^([A-Z])\. \[MASK\]$", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        item = seen.get(question)
        if item is not None:
            return reply(" " + (item.choices or ())["ABCD".index(letter)])
        return reply(" the right answer")

    return generate


async def test_qb_rate_wilson_interval_and_fisher_test_against_the_reference() -> None:
    seen, unseen = qb_items("seen", SEEN_Q), qb_items("unseen", UNSEEN_Q)
    assert len(seen) == 24 and len(unseen) == 24
    model = MockModel(generate_fn=knows_questions(SEEN_Q))
    result = await run(TSGuessingQBProbe(), seen, Runner(model), reference=unseen)
    assert len(result.items) == 24 and all(s.score == 1.0 for s in result.items)
    assert result.mean == 1.0 and result.mean_ci == wilson_interval(24, 24)
    st = result.statistic
    assert st is not None and st.name == "fisher_exact" and st.reference == "unseen"
    assert st.p_value is not None and st.p_value < 0.01 and st.effect == 1.0
    assert st.n == 24 and st.n_reference == 24

    # The other way round there is no evidence, and the rate is 0 with its Wilson interval.
    back = await run(TSGuessingQBProbe(), unseen, Runner(model), reference=seen)
    assert back.mean == 0.0 and back.mean_ci == wilson_interval(0, 24)
    assert back.statistic is not None and back.statistic.p_value == 1.0


async def test_mc_fisher_test_sees_a_model_that_recalls_the_wrong_options() -> None:
    seen, unseen = mc_items("seen", 0, 24), mc_items("unseen", 24, 24)
    model = MockModel(generate_fn=knows_options(seen.items))
    result = await run(TSGuessingMCProbe(), seen, Runner(model), reference=unseen)
    assert result.mean == 1.0 and result.mean_ci == wilson_interval(24, 24)
    st = result.statistic
    assert st is not None and st.p_value is not None and st.p_value < 0.01 and st.reference == "unseen"
    assert any("never the correct answer" in n and "1.000" in n for n in result.notes)


async def test_without_a_reference_or_with_itself_no_test_is_made() -> None:
    part = qb_items("p", SEEN_Q[:10])
    model = MockModel(generate_fn=knows_questions(SEEN_Q[:5]))
    alone = await run(TSGuessingQBProbe(), part, Runner(model))
    assert alone.statistic is None and alone.mean == 0.5 and alone.mean_ci == wilson_interval(5, 10)
    assert any("no test was possible" in n for n in alone.notes)
    itself = await run(TSGuessingQBProbe(), part, Runner(model), reference=part)
    assert itself.statistic is None and any("itself" in n for n in itself.notes)


async def test_an_empty_side_gives_no_test() -> None:
    model, _ = recording()
    result = await run(
        TSGuessingQBProbe(), qb_items("p", ["Who are you?"]), model, reference=qb_items("r", SEEN_Q[:3])
    )
    assert result.items == () and result.mean is None and result.mean_ci is None and result.statistic is None
    assert any("no scorable item in 'p'" in n for n in result.notes)


# -- the runner: one call, cached ----------------------------------------------------------------


class CountingModel:
    """Delegates to a mock and counts the probe's `generate` calls."""

    def __init__(self, inner: MockModel) -> None:
        self.inner = inner
        self.generate_calls = 0
        self.identity = inner.identity
        self.capabilities = inner.capabilities
        self.max_batch = inner.max_batch

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.generate_calls += 1
        return await self.inner.generate(requests)

    async def score(self, requests: Sequence[object]) -> list[object]:
        raise AssertionError("TS-Guessing never scores text")

    async def aclose(self) -> None:
        return None


async def test_all_requests_of_a_run_go_in_one_generate_call() -> None:
    for probe, part, ref in [
        (TSGuessingQBProbe(), qb_items("s", SEEN_Q), qb_items("u", UNSEEN_Q)),
        (TSGuessingMCProbe(), mc_items("s", 0, 20), mc_items("u", 20, 20)),
    ]:
        model = CountingModel(MockModel())
        result = await probe.run(part, model, ProbeContext("b", reference=ref))  # type: ignore[arg-type]
        assert model.generate_calls == 1 and len(model.inner.calls) == len(part) + len(ref)
        assert result.statistic is not None


async def test_a_second_run_through_the_same_runner_makes_no_new_call(tmp_path: Path) -> None:
    for probe, part in [
        (TSGuessingQBProbe(), qb_items("s", SEEN_Q)),
        (TSGuessingMCProbe(), mc_items("s", 0, 20)),
    ]:
        model = MockModel(generate_fn=knows_questions(SEEN_Q))
        runner = Runner(model, CallCache(tmp_path / f"{probe.name}.sqlite"))
        first = await run(probe, part, runner)
        calls = len(model.calls)
        assert calls == len(part)
        second = await run(probe, part, runner)
        assert len(model.calls) == calls and second == first
        runner.cache.close()


async def test_the_masked_option_follows_the_scan_seed() -> None:
    part = mc_items("s", 0, 24)
    model, _ = recording()
    a = await run(TSGuessingMCProbe(), part, model, seed=1)
    b = await run(TSGuessingMCProbe(), part, model, seed=1)
    c = await run(TSGuessingMCProbe(), part, model, seed=2)
    masked = [[s.detail["masked_index"] for s in r.items] for r in (a, b, c)]
    assert masked[0] == masked[1] != masked[2] and a.params["seed"] == 1


def test_both_probes_are_registered_with_their_parameters() -> None:
    assert get_probe("ts_guessing_qb") is TSGuessingQBProbe
    assert get_probe("ts_guessing_mc") is TSGuessingMCProbe
    assert TSGuessingQBProbe().param_dict() == {"form": "auto", "max_tokens": 8}
    assert TSGuessingMCProbe().param_dict() == {"form": "auto", "max_tokens": 32}
    assert TSGuessingQBProbe.needs == () and TSGuessingMCProbe.needs == ()


# -- the CLI on the built-in TruthfulQA-MC -------------------------------------------------------


@pytest.mark.parametrize("probe", ["ts_guessing_mc", "ts_guessing_qb"])
def test_cli_scan_truthfulqa_mc(probe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    calls = tmp_path / "calls.jsonl"
    args = ["scan", "truthfulqa-mc", "--model", f"mock:calls={calls}", "--probe", probe, "--out", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [found] = ScanReport.read(out).probes
    assert found.probe == probe and found.partition == "validation" and found.skipped is None
    assert len(found.items) + len(found.unscored) == 817 and len(found.items) > 700
    assert found.mean == 0.0 and found.mean_ci is not None and found.mean_ci.method == "wilson"
    assert found.statistic is None and found.params["form_used"] == "completion"
    # Each distinct prompt reaches the model once (TruthfulQA repeats some questions).
    sent = calls.read_text(encoding="utf-8").splitlines()
    assert len(set(sent)) == len(sent) and 0.95 * len(found.items) < len(sent) <= len(found.items)
    if probe == "ts_guessing_mc":
        assert {u.reason for u in found.unscored} <= {BINARY, NEAR_DUP}
        assert any(n.startswith(f"{len(found.unscored)} of 817 items skipped") for n in found.notes)


async def test_an_answer_on_a_new_line_is_read_not_lost() -> None:
    """A base model often starts its answer on a new line; with a newline stop it came back empty
    and was graded a miss (every HumanEval testbed answer was)."""
    from contam.models.base import Completion, GenerateResult

    def answers(request):  # type: ignore[no-untyped-def]
        return GenerateResult(completions=(Completion(text="\n  photosynthesis\nand more"),))

    item = Item(id="q", partition="t", text="Plants make sugar by photosynthesis using light.")
    result = await get_probe("ts_guessing_qb")().run(Partition("t", (item,)), Runner(MockModel(generate_fn=answers)), ProbeContext("b"))
    [scored] = result.items
    assert scored.score == 1.0, scored.detail
