"""Guided vs general completion on the scripted mock backend: the cut, the prompts, the forms, the
user's templates, the test against a reference (and none without one), the paper's rule, the judge,
caching and the CLI."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

import contam.registry
from contam.cache import CallCache
from contam.cli.main import cli
from contam.errors import InputError
from contam.models.base import Completion, GenerateRequest, GenerateResult
from contam.models.mock import MockModel
from contam.probe import ProbeContext
from contam.registry import get_probe
from contam.report import ScanReport
from contam.resolve import LocalResolver
from contam.results import ProbeResult
from contam.runner import Runner
from contam.types import Item, Partition
from probes._generation import words
from probes._guided_templates import BUILTIN, FORMS, KINDS, TASKS, load_templates, render
from probes.guided import (
    LABELS,
    NO_WORDS,
    TOO_SHORT,
    WINDOW,
    GuidedProbe,
    clean_completion,
    compared_head,
    cut_point,
    judge_label,
    judge_prompt,
    paper_rule,
    partition_summary,
    resolve_task,
    split_item,
)

VOCAB = [
    "river", "stone", "lantern", "orchard", "meadow", "copper", "violet", "thunder", "harbor", "whisper",
    "canyon", "ember", "falcon", "glacier", "honey", "island", "juniper", "kettle", "lemon", "marble",
    "nectar", "olive", "pepper", "quartz", "raven", "saddle", "tulip", "umber", "velvet", "willow",
    "yarrow", "zephyr", "anchor", "bramble", "cinder", "dune", "fable", "garnet", "hollow", "ivory",
]  # fmt: skip


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n)).capitalize() + "."


def prose_items(
    name: str, n: int, *, seed: int = 1, label: str | None = None, length: int | None = None
) -> Partition:
    """Items of three sentences of distinct random words (so no item's piece is another's), each of
    6-12 words, or of `length` words."""
    rng = random.Random(f"{seed}:{name}")
    items = []
    for i in range(n):
        text = " ".join(sentence(rng, length or rng.randint(6, 12)) for _ in range(3))
        items.append(Item(id=f"{name}-{i}", partition=name, text=text, label=label))
    return Partition(name, tuple(items))


def content(request: GenerateRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    assert request.messages is not None
    return request.messages[-1].content


def reply(text: str) -> GenerateResult:
    return GenerateResult(completions=(Completion(text=text),))


def continuation_of(prompt: str, corpus: Sequence[str]) -> str | None:
    """The rest of the corpus text whose head the prompt shows (as its end, or before the cue)."""
    for text in corpus:
        for m in reversed(list(re.finditer(r"\S+", text))):
            head = text[: m.start()].rstrip()
            if head and (prompt.endswith(head) or f"{head}\nSecond piece:" in prompt):
                return text[m.start() :]
    return None


def scripted(
    corpus: Sequence[str], *, when: Callable[[str], bool]
) -> Callable[[GenerateRequest], GenerateResult]:
    """A model that gives the true continuation when `when(prompt)`, else unrelated words."""

    def generate(request: GenerateRequest) -> GenerateResult:
        prompt = content(request)
        found = continuation_of(prompt, corpus) if when(prompt) else None
        return reply(found if found is not None else " the quick brown fox jumps over a lazy dog")

    return generate


def names_dataset(prompt: str) -> bool:
    return "Demo" in prompt


def run(probe: GuidedProbe, partition: Partition, model, *, benchmark: str = "demo", **ctx) -> ProbeResult:
    import asyncio

    return asyncio.run(probe.run(partition, model, ProbeContext(benchmark=benchmark, **ctx)))


def probe(**params) -> GuidedProbe:
    made = GuidedProbe.from_options({"dataset": "Demo", **params})
    assert isinstance(made, GuidedProbe)
    return made


# -- the cut ---------------------------------------------------------------------------------------


def test_cut_at_the_sentence_boundary_inside_the_window() -> None:
    text = "One two three four. Five six seven eight. Nine ten eleven twelve."  # 12 words
    for fraction in (0.4, 0.55, 0.7):
        cut = cut_point(text, fraction)
        assert cut is not None and cut.boundary == "sentence"
        assert text[cut.offset :] == "Nine ten eleven twelve."  # word 8 of 12: the one boundary in [4.8, 8.4]


def test_labels_initialisms_and_titles_do_not_end_a_sentence() -> None:
    text = "Which one?\nA. first option here\nB. second option here\nC. third one"
    cut = cut_point(text, 0.55)
    assert cut is not None and text[cut.offset :].startswith("B. second")  # the line, not after "B."
    text = "Dr. Smith met the U.S. envoy, e.g. at noon, and both agreed on every single term"
    cut = cut_point(text, 0.5)
    assert cut is not None and cut.boundary == "word"


def test_cut_picks_the_boundary_nearest_the_drawn_point() -> None:
    text = " ".join(f"Word{i} w." for i in range(10))  # a boundary after every second word, 20 words
    near_40 = cut_point(text, 0.41)
    near_70 = cut_point(text, 0.69)
    assert near_40 is not None and near_70 is not None
    assert text[near_40.offset :].startswith("Word4 ")  # word 8 of 20
    assert text[near_70.offset :].startswith("Word7 ")  # word 14 of 20


def test_cut_of_one_sentence_is_at_the_word_nearest_the_point() -> None:
    text = " ".join(f"w{i}" for i in range(20))
    cut = cut_point(text, 0.5)
    assert cut is not None and cut.boundary == "word" and text[cut.offset :].startswith("w10 ")
    cut = cut_point(text, 0.66)
    assert cut is not None and text[cut.offset :].startswith("w13 ")


def test_cut_falls_back_to_a_word_when_no_sentence_boundary_is_in_the_window() -> None:
    text = " ".join(f"w{i}" for i in range(18)) + ". Tail end."  # boundary at word 18 of 20 (90%)
    cut = cut_point(text, 0.5)
    assert cut is not None and cut.boundary == "word" and text[cut.offset :].startswith("w10 ")


def test_line_breaks_are_boundaries_and_code_cuts_only_there() -> None:
    prose = "first line has words\nsecond line too\nthird line here and more"
    cut = cut_point(prose, 0.5)
    assert cut is not None and cut.boundary == "sentence" and prose[cut.offset :].startswith("third")
    code = "x = compute(a, b). y = z + 1\n    total = x + y\n    return total * 2\n"  # line breaks at 9 and 14 of 18 words
    cut = cut_point(code, 0.5, lines=True)
    assert cut is not None and cut.boundary == "line"
    assert code[cut.offset :] == "    total = x + y\n    return total * 2\n"  # indentation kept


def test_one_word_cannot_be_cut() -> None:
    assert cut_point("alone", 0.5) is None and cut_point("  ", 0.5) is None
    assert cut_point("two words", 0.55) is not None


def test_split_points_differ_per_item_and_stay_in_the_window() -> None:
    text = " ".join(f"w{i}" for i in range(40))
    splits = [split_item(Item(id=f"i{k}", partition="p", text=text), 0) for k in range(30)]
    assert all(s is not None for s in splits)
    offsets = {s.cut.offset for s in splits if s is not None}
    assert len(offsets) >= 6  # the official code draws one point for all items
    for s in splits:
        assert s is not None and WINDOW[0] <= s.fraction <= WINDOW[1]
        at = len(s.first_piece.split())
        assert 0.4 * 40 - 1 <= at <= 0.7 * 40 + 1
        assert words(s.first_piece + " " + s.continuation) == words(text)


def test_split_is_deterministic_per_seed() -> None:
    text = " ".join(f"w{i}" for i in range(40))
    item = Item(id="x", partition="p", text=text)
    assert split_item(item, 3) == split_item(item, 3)
    cuts = {split_item(item, seed).cut.offset for seed in range(20)}  # type: ignore[union-attr]
    assert len(cuts) > 3


def test_prompt_and_reference_cut_inside_the_reference() -> None:
    item = Item(
        id="q",
        partition="test",
        text="How many legs have two cats?\nEach cat has four legs. Two cats have eight legs.",
        prompt="How many legs have two cats?",
        reference="Each cat has four legs. Two cats have eight legs.",
    )
    s = split_item(item, 0)
    assert s is not None and s.cut_in == "reference" and s.cut.boundary == "sentence"
    assert s.first_piece == "How many legs have two cats?\nEach cat has four legs."
    assert s.continuation == "Two cats have eight legs."


def test_reference_keeps_the_published_separator_and_code_indentation() -> None:
    prompt = 'def add(a, b):\n    """Add them."""\n'
    solution = "    total = a + b\n    check(total)\n    return total\n"
    item = Item(id="HumanEval/0", partition="test", text=prompt + solution, prompt=prompt, reference=solution)
    s = split_item(item, 0, code=True)
    assert s is not None and s.cut.boundary == "line"
    assert s.first_piece + s.continuation == prompt + solution
    assert s.first_piece.endswith("\n") and s.continuation.startswith("    ")


def test_one_word_reference_is_the_whole_continuation() -> None:
    item = Item(
        id="q",
        partition="p",
        text="Capital of France?\nParis",
        prompt="Capital of France?",
        reference="Paris",
    )
    s = split_item(item, 0)
    assert s is not None and s.cut.boundary == "start" and s.first_piece == "Capital of France?"
    assert s.continuation == "Paris"


def test_no_reference_cuts_the_text_and_one_word_is_unsplittable() -> None:
    assert split_item(Item(id="a", partition="p", text="alone"), 0) is None
    blank = Item(
        id="b", partition="p", text="What now? More words follow here.", prompt="What now?", reference=" "
    )
    s = split_item(blank, 0)
    assert s is not None and s.cut_in == "text"


# -- prompts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("form", FORMS)
def test_every_template_renders(task, form) -> None:
    first = "The first piece, with {braces} kept."
    for label in ("positive", None):
        guided = render(
            BUILTIN[task].get("guided", form), dataset="Demo", split="dev", label=label, first_piece=first
        )
        general = render(
            BUILTIN[task].get("general", form), dataset="Demo", split="dev", label=label, first_piece=first
        )
        for text in (guided, general):
            assert first in text and "{" not in text.replace("{braces}", "")
            assert ("positive" in text) == (label is not None)
            assert "Label:" not in text or label is not None
        assert "Demo" in guided and "dev" in guided
        assert "Demo" not in general and "dev" not in general
        if form == "chat":
            assert guided.startswith("Instruction: ") and general.startswith("Instruction: ")
            assert "exactly as it appears in the dataset" in guided
            assert guided.endswith("Second piece:") and general.endswith("Second piece:")
        else:
            assert guided.startswith(
                "# Dataset: Demo\n# Split: dev\n" if task == "code" else "Dataset: Demo\nSplit: dev\n"
            )
            assert guided.endswith(first) and general.endswith(first)
            if label is None:
                assert general == first  # the general completion form is the first piece alone


def test_resolve_task_auto_rule() -> None:
    plain = prose_items("p", 4).items
    labelled = prose_items("p", 4, label="sports").items
    qa = tuple(Item(id=f"q{i}", partition="p", text="Q?\nA.", prompt="Q?", reference="A.") for i in range(4))
    code = tuple(Item(id=f"c{i}", partition="p", text="def f(x):\n    return x\n") for i in range(4))
    assert resolve_task("auto", "humaneval", qa) == "code"
    assert resolve_task("auto", "mine", code) == "code"
    assert resolve_task("auto", "mnli", labelled) == "nli"
    assert resolve_task("auto", "xsum", qa) == "summarisation"
    assert resolve_task("auto", "gsm8k", qa) == "qa"
    assert resolve_task("auto", "agnews", labelled) == "classification"
    assert resolve_task("auto", "corpus", plain) == "classification"
    assert resolve_task("qa", "humaneval", plain) == "qa"


# -- forms and requests ----------------------------------------------------------------------------


def test_auto_form_chat_on_chat_only_and_completion_on_base() -> None:
    part = prose_items("test", 3)
    chat = MockModel(chat_only=True)
    run(probe(), part, chat)
    sent = [GenerateRequest.model_validate_json(r) for _, r in chat.calls]
    assert len(sent) == 6 and all(r.messages is not None and r.prompt is None for r in sent)
    assert all(r.temperature == 0 and r.seed is None and r.stop == () for r in sent)
    base = MockModel()
    result = run(probe(), part, base)
    assert result.params["form_used"] == "completion"
    sent = [GenerateRequest.model_validate_json(r) for _, r in base.calls]
    assert all(r.prompt is not None and r.messages is None for r in sent)
    assert all(r.stop == ("\n\n", "\nDataset:") for r in sent)
    assert sent[0].prompt is not None and sent[0].prompt.startswith("Dataset: Demo\nSplit: test\n\n")


def test_forced_completion_on_a_chat_only_model_is_skipped() -> None:
    model = MockModel(chat_only=True)
    result = run(probe(form="completion"), prose_items("test", 3), model)
    assert result.skipped is not None and "chat-only" in result.skipped and not result.items
    assert model.calls == []


def test_forced_chat_on_a_base_model_sends_messages() -> None:
    model = MockModel()
    result = run(probe(form="chat"), prose_items("test", 2), model)
    assert result.params["form_used"] == "chat"
    assert all(GenerateRequest.model_validate_json(r).messages for _, r in model.calls)


def test_max_tokens_default_fixed_and_capped() -> None:
    item = Item(id="a", partition="p", text=" ".join(f"w{i}" for i in range(40)))
    part = Partition("p", (item,))
    split = split_item(item, 0)
    assert split is not None
    n = len(split.continuation.split())
    for params, expected in (({}, 3 * n + 32), ({"max_tokens": 7}, 7), ({"max_tokens_cap": 20}, 20)):
        model = MockModel()
        run(probe(**params), part, model)
        assert {GenerateRequest.model_validate_json(r).max_tokens for _, r in model.calls} == {expected}


def test_label_reaches_both_prompts_and_the_dataset_only_the_guided() -> None:
    model = MockModel(chat_only=True)
    run(probe(), prose_items("validation", 1, label="sports"), model)
    guided, general = (content(GenerateRequest.model_validate_json(r)) for _, r in model.calls)
    assert "Label: sports" in guided and "Label: sports" in general
    assert "validation split of the Demo dataset" in guided
    assert "Demo" not in general and "validation" not in general


def test_builtin_benchmarks_are_named_as_published() -> None:
    model = MockModel(chat_only=True)
    result = run(GuidedProbe(), prose_items("test", 1), model, benchmark="gsm8k")
    assert result.params["dataset_named"] == "GSM8K"
    assert "GSM8K dataset" in content(GenerateRequest.model_validate_json(model.calls[0][1]))


# -- user templates --------------------------------------------------------------------------------


def write(tmp_path: Path, data: object, name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_user_templates_replace_the_builtin_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "guided": {"chat": "From {dataset} ({split}), {{verbatim}}:\nLabel: {label}\n{first_piece}"},
            "general": {"chat": "Go on:\n{first_piece}"},
        },
    )
    model = MockModel(chat_only=True)
    part = prose_items("dev", 1)
    result = run(probe(templates=str(path)), part, model)
    guided, general = (content(GenerateRequest.model_validate_json(r)) for _, r in model.calls)
    split = split_item(part.items[0], 0)
    assert split is not None
    assert guided == f"From Demo (dev), {{verbatim}}:\n{split.first_piece}"  # label line dropped
    assert general == f"Go on:\n{split.first_piece}"
    assert result.params["templates_sha256"] == load_templates(path).sha256
    completion = load_templates(path).over(BUILTIN["qa"])
    assert completion.guided.completion == BUILTIN["qa"].guided.completion  # not given: built in


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"guided": {"chat": "{dataset} {nope} {first_piece}"}},
            "guided.chat",
            "unknown placeholder(s) {nope}",
        ),
        ({"guided": {"completion": "Dataset: {dataset}"}}, "guided.completion", "no {first_piece}"),
        ({"general": {"chat": "{dataset}: {first_piece}"}}, "general.chat", "must not name the dataset"),
        ({"general": {"chat": "{first_piece"}}, "general.chat", "not a valid template"),
        ({"general": {"chat": "{first_piece!r}"}}, "general.chat", "no conversion or format spec"),
        ({"guided": {"chat": 3}}, "guided.chat", "expected a string"),
        ({"guided": {"prose": "{first_piece}"}}, "guided.prose", "unknown form"),
        ({"guidance": {}}, "guidance", "unknown key"),
        ({"guided": "{first_piece}"}, "guided", "expected an object"),
    ],
)
def test_user_template_errors_name_the_file_and_field(tmp_path: Path, data, field, message) -> None:
    path = write(tmp_path, data)
    probe = GuidedProbe.from_options({"templates": str(path)})  # builds without reading the file
    with pytest.raises(InputError) as err:
        LocalResolver().check(probe.params, field="guided")  # the CLI's check, before any model call
    assert err.value.path == str(path) and err.value.field == field and message in str(err.value)


def test_user_template_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="malformed JSON") as err:
        load_templates(write(tmp_path, '{"guided":\n  {"chat": }}'))
    assert err.value.line == 2
    with pytest.raises(InputError, match="gives no template"):
        load_templates(write(tmp_path, {}))
    with pytest.raises(InputError, match="expected a JSON object"):
        load_templates(write(tmp_path, []))
    with pytest.raises(InputError, match="cannot read") as err:
        load_templates(tmp_path / "missing.json")
    assert err.value.path == str(tmp_path / "missing.json")


def test_unknown_params_are_refused() -> None:
    probe = GuidedProbe.from_options({"judge": "openai:tiny"})
    with pytest.raises(InputError, match=r"guided\.judge"):
        LocalResolver().check(probe.params, field="guided")
    with pytest.raises(InputError, match=r"guided\.nope"):
        GuidedProbe.from_options({"nope": 1})
    with pytest.raises(InputError, match=r"guided\.task"):
        GuidedProbe.from_options({"task": "poetry"})


# -- reading completions ---------------------------------------------------------------------------


def test_chat_answers_lose_fences_cues_and_restatements() -> None:
    first = "alpha beta gamma delta epsilon zeta eta theta iota"
    assert (
        clean_completion("Sure:\n```python\n    return x\n```\nThat is it.", "chat", "p") == "    return x\n"
    )
    assert clean_completion("Second piece: kappa lambda", "chat", first) == "kappa lambda"
    restated = f"First piece: {first.title()}, Second piece: kappa lambda"
    assert clean_completion(restated, "chat", first) == "kappa lambda"
    code = "    answer: int = 0\n    return answer\n"
    assert clean_completion(code, "chat", "def f() -> int:") == code  # a lower-case `answer:` is code
    assert clean_completion("Second piece: x", "completion", first) == "Second piece: x"  # read as is


def test_compared_head_keeps_the_continuation_plus_a_little_slack() -> None:
    continuation = " ".join(f"c{i}" for i in range(30))  # slack max(2, 3) = 3
    completion = continuation + " " + " ".join(f"x{i}" for i in range(20))
    assert words(compared_head(completion, continuation)) == [*words(continuation), "x0", "x1", "x2"]
    assert compared_head("short one", continuation) == "short one"
    assert words(compared_head("a b c d e f", "one two")) == ["a", "b", "c", "d"]


# -- the partition: the test against a reference, the paired description, the paper's rule ---------


def halved(corpus: Sequence[str]) -> Callable[[GenerateRequest], GenerateResult]:
    """A model that knows the dataset's style, not its items: under the guided prompt it gets the
    first half of every continuation right, seen or not; under the general prompt, nothing."""

    def generate(request: GenerateRequest) -> GenerateResult:
        prompt = content(request)
        found = continuation_of(prompt, corpus) if names_dataset(prompt) else None
        if found is None:
            return reply(" the quick brown fox jumps over a lazy dog")
        half = found.split()
        return reply(" " + " ".join(half[: max(1, len(half) // 2)]))

    return generate


def test_memorising_model_is_detected_against_the_reference() -> None:
    part, ref = prose_items("test", 16), prose_items("ref", 16)
    model = MockModel(generate_fn=scripted([i.text for i in part.items], when=names_dataset))
    for form in FORMS:
        result = run(probe(form=form), part, model, reference=ref)
        st = result.statistic
        assert st is not None and st.name == "mann_whitney_u" and st.reference == "ref"
        assert st.n == 16 and st.n_reference == 16 and len(result.reference_items) == 16
        assert st.p_value is not None and st.p_value < 0.01 and st.effect == pytest.approx(1.0)
        assert all(s.detail["match"] == "exact" and s.detail["general_match"] == "none" for s in result.items)
        assert all(s.detail["guided_rouge_l"] == 1.0 and s.detail["guided_edit"] == 1.0 for s in result.items)
        assert all(
            s.score == s.detail["guided_rouge_l"] - s.detail["general_rouge_l"] > 0.5 for s in result.items
        )
        assert all(s.detail["match"] == "none" for s in result.reference_items)
        assert result.params["paper_rule"] == {
            "counts": {"exact": 16, "near_exact": 0, "none": 0},
            "contaminated": True,
        }
        assert result.params["paper_rule_reference"]["contaminated"] is False
        assert result.params["paired_wilcoxon"]["effect"] == pytest.approx(1.0)
        assert any(
            n.startswith("paper's rule (matcher): contaminated (16 exact, 0 near-exact of 16")
            for n in result.notes
        )
        assert result.mean == pytest.approx(sum(s.score for s in result.items) / 16)
        assert any("applies its rule to 10 instances" in n for n in result.notes)


def test_a_model_that_knows_the_style_is_not_flagged_against_a_reference_treated_alike() -> None:
    """Guided helps this model on every item, seen or not: the old paired test called that
    significant; against a reference scored the same way it is no evidence."""
    # 3 x 8 words: every cut is after the second sentence, so every item gains 2/3 ROUGE-L.
    part, ref = prose_items("test", 16, length=8), prose_items("ref", 16, length=8)
    model = MockModel(generate_fn=halved([i.text for i in (*part.items, *ref.items)]))
    result = run(probe(form="chat"), part, model, reference=ref)
    assert {round(s.score, 6) for s in (*result.items, *result.reference_items)} == {round(2 / 3, 6)}
    st = result.statistic
    assert st is not None and st.name == "mann_whitney_u" and st.reference == "ref"
    assert st.p_value == 1.0 and st.effect == 0.5
    paired = result.params["paired_wilcoxon"]  # what the probe used to decide by
    assert paired["name"] == "wilcoxon_signed_rank" and paired["p_value"] < 1e-3
    assert any("paired Wilcoxon signed-rank" in n and "not the test" in n for n in result.notes)


def test_the_reference_is_prompted_as_the_tested_partition_is() -> None:
    part, ref = prose_items("test", 3), prose_items("reference:other", 3)
    for form in FORMS:
        model = MockModel(chat_only=form == "chat")
        result = run(probe(form=form), part, model, reference=ref)
        prompts = [content(GenerateRequest.model_validate_json(r)) for _, r in model.calls]
        guided = [q for q in prompts if "Demo" in q]
        assert len(prompts) == 12 and len(guided) == 6
        assert all("test" in q and "reference:other" not in q for q in guided)
        for piece in (split_item(i, 0) for i in ref.items):
            assert piece is not None and sum(piece.first_piece in q for q in guided) == 1
        assert [s.id for s in result.reference_items] == list(ref.ids)
        assert any("naming split 'test', as the tested items are" in n for n in result.notes)


def test_without_a_reference_no_p_value_is_given_and_the_note_says_why() -> None:
    part = prose_items("test", 16)
    model = MockModel(generate_fn=scripted([i.text for i in part.items], when=names_dataset))
    result = run(probe(), part, model)
    assert result.statistic is None and result.reference_items == ()
    assert result.params["paired_wilcoxon"]["p_value"] < 0.01  # described, not used
    assert result.params["paper_rule"]["contaminated"] is True
    (why,) = [n for n in result.notes if n.startswith("no reference partition given")]
    assert "no test was possible" in why and "symmetric about zero" in why and "style" in why


def test_the_partition_itself_as_reference_gives_no_test() -> None:
    part = prose_items("test", 4)
    model = MockModel()
    result = run(probe(), part, model, reference=part)
    assert result.statistic is None and result.reference_items == () and len(model.calls) == 8
    assert any("is 'test' itself: scores reported, no test was possible" in n for n in result.notes)


def test_non_memorising_model_is_not_detected() -> None:
    part, ref = prose_items("test", 16), prose_items("ref", 16)
    model = MockModel(generate_fn=scripted([i.text for i in part.items], when=lambda _: False))
    result = run(probe(form="chat"), part, model, reference=ref)
    st = result.statistic
    assert st is not None and st.p_value is not None and st.p_value >= 0.05
    assert result.params["paper_rule"]["contaminated"] is False
    assert any(
        "paper's rule (matcher): not contaminated (0 exact, 0 near-exact of 16" in n for n in result.notes
    )
    default = run(probe(), part, MockModel())  # the mock's own random words
    assert default.statistic is None and default.params["paired_wilcoxon"]["p_value"] == 1.0


def test_a_model_that_completes_either_way_is_no_evidence() -> None:
    """The paper's rule flags a partition the model can continue without being told its name, and
    on a reference it continues as well; the test against that reference does not."""
    part, ref = prose_items("test", 12), prose_items("ref", 12)
    corpus = [i.text for i in (*part.items, *ref.items)]
    result = run(
        probe(form="chat"), part, MockModel(generate_fn=scripted(corpus, when=lambda _: True)), reference=ref
    )
    assert result.statistic is not None and result.statistic.p_value is not None
    assert result.statistic.p_value == 1.0 and result.params["paired_wilcoxon"]["p_value"] == 1.0
    assert result.params["paper_rule"]["contaminated"] is True
    assert result.params["paper_rule_reference"]["contaminated"] is True


def test_paper_rule_and_partition_summary() -> None:
    assert LABELS == ("exact", "near_exact", "none")
    assert paper_rule({"exact": 1}) and paper_rule({"near_exact": 2, "none": 40})
    assert not paper_rule({"near_exact": 1, "none": 9}) and not paper_rule({})
    counts, flagged = partition_summary(["none", "near_exact", "none", "near_exact"])
    assert counts == {"exact": 0, "near_exact": 2, "none": 2} and flagged
    assert partition_summary([]) == ({"exact": 0, "near_exact": 0, "none": 0}, False)
    with pytest.raises(ValueError, match="not a match label"):
        partition_summary(["exactish"])


def test_unscorable_items_are_listed_and_left_out() -> None:
    items = (*prose_items("test", 3).items, Item(id="one", partition="test", text="alone"))
    items += (Item(id="dots", partition="test", text="Words here then. ... ... ..."),)
    part = Partition("test", items)
    ref = Partition("ref", (*prose_items("ref", 3).items, Item(id="r1", partition="ref", text="alone")))
    result = run(probe(), part, MockModel(), reference=ref)
    assert {u.id: u.reason for u in result.unscored} == {"one": TOO_SHORT, "dots": NO_WORDS}
    assert result.statistic is not None and result.statistic.n == 3 and len(result.items) == 3
    assert result.statistic.n_reference == 3 and len(result.reference_items) == 3
    assert any("2 of 5 items could not be scored" in n for n in result.notes)
    assert any("1 of 4 'ref' items could not be scored, excluded from the test" in n for n in result.notes)
    lone = Partition("test", (Item(id="one", partition="test", text="alone"),))
    nothing = run(probe(), lone, MockModel(), reference=ref)
    assert nothing.statistic is None and any("no scorable item in 'test'" in n for n in nothing.notes)


def test_item_detail_records_the_cut_and_both_completions() -> None:
    part = prose_items("test", 1)
    result = run(probe(), part, MockModel(generate_fn=scripted([part.items[0].text], when=names_dataset)))
    (item,) = result.items
    split = split_item(part.items[0], 0)
    assert split is not None
    d = item.detail
    assert d["cut"] == split.cut.offset and d["cut_in"] == "text" and d["boundary"] == split.cut.boundary
    assert d["cut_fraction"] == round(split.fraction, 4) and d["continuation_words"] == len(
        words(split.continuation)
    )
    assert words(d["guided_completion"]) == words(split.continuation)
    assert {"guided_edit", "general_edit", "general_completion"} <= set(d)


# -- seeds, caching, one call ----------------------------------------------------------------------


def test_one_generate_call_and_a_second_run_makes_no_new_calls() -> None:
    class Counting(MockModel):
        invocations = 0

        async def generate(self, requests):
            Counting.invocations += 1
            return await super().generate(requests)

    part = prose_items("test", 10)
    model = Counting(generate_fn=scripted([i.text for i in part.items], when=names_dataset))
    first = run(probe(), part, model)
    assert Counting.invocations == 1 and len(model.calls) == 20
    run(probe(), part, model, reference=prose_items("ref", 5))  # the reference's in the same call
    assert Counting.invocations == 2 and len(model.calls) == 50

    cache = CallCache(None)
    runner = Runner(model, cache, batch_size=64)
    again = run(probe(), part, runner)
    calls = len(model.calls)
    twice = run(probe(), part, runner)
    assert len(model.calls) == calls and runner.stats.cache_hits == 20
    assert first.items == again.items == twice.items
    cache.close()


def test_the_scan_seed_moves_the_cuts() -> None:
    part = prose_items("test", 12)
    a = run(probe(), part, MockModel(), seed=0)
    b = run(probe(), part, MockModel(), seed=1)
    assert a.params["seed"] == 0 and b.params["seed"] == 1
    assert [s.detail["cut_fraction"] for s in a.items] != [s.detail["cut_fraction"] for s in b.items]


# -- the judge -------------------------------------------------------------------------------------


def test_judge_answers_are_parsed() -> None:
    assert judge_label("exact") == "exact" and judge_label(" Exact match.") == "exact"
    assert judge_label("near-exact") == "near_exact" and judge_label("Near exact") == "near_exact"
    assert judge_label("No.") == "none" and judge_label("none") == "none"
    assert judge_label("I think so") is None and judge_label("") is None
    prompt = judge_prompt("the reference", "the candidate")
    assert prompt.startswith("Instruction: ") and prompt.count("Example ") == 5
    assert prompt.endswith("Reference text: the reference\nCandidate text: the candidate\nAnswer:")


def test_judge_labels_go_beside_the_matchers(monkeypatch: pytest.MonkeyPatch) -> None:
    def judge(request: GenerateRequest) -> GenerateResult:
        ref, cand = re.findall(r"Reference text: (.*)\nCandidate text: (.*)\nAnswer:$", content(request))[0]
        return reply(" exact" if words(ref) == words(cand)[: len(words(ref))] else " no")

    judge_model = MockModel(generate_fn=judge, name="judge")
    monkeypatch.setattr(contam.registry, "create_model", lambda spec: judge_model)
    part = prose_items("test", 6)
    corpus = [i.text for i in part.items]
    model = MockModel(generate_fn=scripted(corpus[:2], when=names_dataset))  # knows two items
    result = run(probe(judge="mock:name=judge"), part, model)
    labels = [s.detail["judge"] for s in result.items]
    assert labels == ["exact", "exact", "none", "none", "none", "none"]
    assert [s.detail["match"] for s in result.items] == labels
    assert all(s.detail["judge_answer"] in ("exact", "no") for s in result.items)
    assert result.params["paper_rule_judge"] == {
        "counts": {"exact": 2, "near_exact": 0, "none": 4},
        "contaminated": True,
    }
    assert result.params["judge_model"] == judge_model.identity.key
    sent = [GenerateRequest.model_validate_json(r) for _, r in judge_model.calls]
    assert len(sent) == 6 and all(
        r.prompt is not None and r.stop == ("\n",) and r.max_tokens == 8 for r in sent
    )


def test_a_judge_that_answers_nothing_usable_is_said() -> None:
    result = run(probe(judge="mock"), prose_items("test", 3), MockModel())
    assert all(s.detail["judge"] is None for s in result.items)
    assert result.params["paper_rule_judge"]["counts"] == {"exact": 0, "near_exact": 0, "none": 0}
    assert any("the judge gave no label for 3 of 3 items" in n for n in result.notes)


# -- registry and CLI ------------------------------------------------------------------------------


def test_registered_with_no_needs() -> None:
    assert get_probe("guided") is GuidedProbe and GuidedProbe.needs == ()


@pytest.fixture
def cli_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONTAM_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def bench(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    rows = [
        {"id": item.id, "text": item.text, "partition": name}
        for name in ("suspect", "unseen")
        for item in prose_items(name, 12).items
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def test_cli_scan_chat_form(cli_run, tmp_path: Path) -> None:
    path, _ = bench(tmp_path)
    out = tmp_path / "r.json"
    result = cli_run(
        "scan",
        str(path),
        "--model",
        "mock",
        "--probe",
        "guided",
        "--param",
        "guided.form=chat",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    report = ScanReport.read(out)
    assert {p.partition for p in report.probes} == {"suspect", "unseen"}
    for p in report.probes:
        assert p.probe == "guided" and p.params["form_used"] == "chat" and len(p.items) == 12
        assert p.statistic is None and p.params["paired_wilcoxon"]["p_value"] == 1.0  # no reference
        assert p.params["dataset_named"] == "b" and p.params["paper_rule"]["contaminated"] is False
    assert report.verdicts is not None
    assert {v.rule_id for v in report.verdicts.partitions} == {"nothing_testable"}


def test_cli_scan_detects_a_partition_memorised_with_its_dump_header(cli_run, tmp_path: Path) -> None:
    path, rows = bench(tmp_path)
    seen = tmp_path / "seen.json"
    header = "Dataset: Demo\nSplit: suspect\n\n"
    seen.write_text(
        json.dumps([header + r["text"] for r in rows if r["partition"] == "suspect"]), encoding="utf-8"
    )
    out = tmp_path / "r.json"
    result = cli_run(
        "scan",
        str(path),
        "--model",
        f"mock:seen={seen}",
        "--probe",
        "guided",
        "--param",
        "guided.dataset=Demo",
        "--param",
        "guided.form=completion",
        "--reference",
        "unseen",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    report = ScanReport.read(out)
    (guided,) = report.probes
    st = guided.statistic
    assert guided.partition == "suspect" and len(guided.reference_items) == 12
    assert st is not None and st.reference == "unseen" and st.p_value is not None and st.p_value < 0.01
    assert guided.params["paper_rule"]["counts"]["exact"] == 12
    assert guided.params["paper_rule_reference"]["contaminated"] is False
    assert report.verdicts is not None
    (verdict,) = report.verdicts.partitions
    assert verdict.verdict == "contaminated", verdict


def test_every_kind_and_form_is_a_builtin() -> None:
    for task in TASKS:
        for kind in KINDS:
            for form in FORMS:
                assert "{first_piece}" in BUILTIN[task].get(kind, form)
