"""The generation probes' shared helpers: seeds, form choice, requests, text scores."""

from __future__ import annotations

from contam.models.base import Capabilities
from probes._generation import edit_similarity, generate_request, item_seed, resolve_form, rouge_l

CHAT_ONLY = Capabilities(prompt_logprobs=False, token_logprobs=False, distribution="none", chat_only=True)
BASE = Capabilities(prompt_logprobs=True, token_logprobs=True, distribution="exact")


def test_a_completion_prompt_never_ends_in_whitespace_a_chat_message_is_left_alone() -> None:
    # A trailing "\n" splits the "\n    " token of the training text: the model then mostly stops.
    text = 'def f(x):\n    """Add one."""\n'
    assert generate_request("completion", text, max_tokens=8).prompt == 'def f(x):\n    """Add one."""'
    chat = generate_request("chat", text, system="be brief", max_tokens=8)
    assert chat.prompt is None and chat.messages is not None
    assert [m.role for m in chat.messages] == ["system", "user"] and chat.messages[1].content == text


def test_greedy_requests_carry_no_seed_and_sampled_ones_do() -> None:
    assert generate_request("completion", "x", max_tokens=4, seed=3).seed is None
    sampled = generate_request("completion", "x", max_tokens=4, temperature=0.8, n=5, seed=3)
    assert (sampled.seed, sampled.n, sampled.temperature) == (3, 5, 0.8)


def test_item_seeds_are_stable_distinct_and_fit_a_signed_int32() -> None:
    seeds = {item_seed(0, "cdd", f"item{i}") for i in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**31 for s in seeds)
    assert item_seed(0, "cdd", "a") == item_seed(0, "cdd", "a") != item_seed(1, "cdd", "a")
    assert item_seed(0, "cdd", "a") != item_seed(0, "guided", "a")


def test_form_follows_the_model_and_a_forced_form_it_cannot_serve_says_why() -> None:
    assert resolve_form("auto", BASE) == ("completion", None)
    assert resolve_form("auto", CHAT_ONLY) == ("chat", None)
    form, why = resolve_form("completion", CHAT_ONLY)
    assert form is None and why is not None and "chat-only" in why
    local = BASE.model_copy(update={"chat": False})  # hf and the vLLM engine take no messages
    form, why = resolve_form("chat", local)
    assert form is None and why is not None and "no chat template" in why
    assert resolve_form("auto", local) == ("completion", None)


def test_text_scores_are_word_level_and_bounded() -> None:
    assert rouge_l("The cat sat.", "the cat sat") == 1.0 and edit_similarity("The cat, sat!", "the cat sat") == 1.0
    assert rouge_l("", "the cat") == 0.0 and edit_similarity("", "") == 1.0
    assert 0.0 < edit_similarity("the cat sat down", "the cat sat") < 1.0
