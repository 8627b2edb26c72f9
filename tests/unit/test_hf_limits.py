"""The hf backend's edges on a micro random Llama (built in a second, no trained model needed):
texts past max_position_embeddings are not scored, and say their length and the limit, rather
than extrapolated; texts with no scorable token give an empty result; the identity carries the
dtype and the computation version."""

from __future__ import annotations

from pathlib import Path

import pytest

from contam.errors import ModelCallError
from contam.models.base import GenerateRequest, ScoreRequest
from contam.models.hf import HFModel

pytest.importorskip("transformers")

MAX_POSITIONS = 32
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"


@pytest.fixture(scope="module")
def micro_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("micro")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([WORDS] * 20, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>").save_pretrained(str(out))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=MAX_POSITIONS,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def model(micro_model_dir: Path) -> HFModel:
    return HFModel(micro_model_dir, device="cpu", batch=4)


def long_text(model: HFModel, n_tokens: int) -> str:
    text = ""
    while len(model.token_ids(text, True)) <= n_tokens:
        text += " " + WORDS
    return text


async def test_a_text_past_the_context_is_not_scored_and_says_its_length(model: HFModel) -> None:
    text = long_text(model, MAX_POSITIONS)
    n = len(model.token_ids(text, True))
    [r] = await model.score([ScoreRequest(text=text, distribution=True)])
    assert r.logprobs == () and r.tokens == () and r.dist_mean == ()
    assert r.overflow is not None
    assert (r.overflow.tokens, r.overflow.limit, r.overflow.setting) == (n, MAX_POSITIONS, "max_position_embeddings")
    assert f"{n} tokens" in r.overflow.message() and f"{MAX_POSITIONS} tokens" in r.overflow.message()


async def test_the_rest_of_a_batch_with_one_long_text_is_scored(model: HFModel) -> None:
    ok = ScoreRequest(text="alpha beta gamma")
    first, long, last = await model.score([ok, ScoreRequest(text=long_text(model, MAX_POSITIONS)), ok])
    [alone] = await model.score([ok])
    assert first == last == alone and alone.overflow is None and long.overflow is not None


async def test_a_text_exactly_at_the_context_is_scored(model: HFModel) -> None:
    text = long_text(model, MAX_POSITIONS)
    ids = model.token_ids(text, True)
    fits = model.tokenizer.decode(ids[1:MAX_POSITIONS])
    assert len(model.token_ids(fits, True)) <= MAX_POSITIONS
    [r] = await model.score([ScoreRequest(text=fits)])
    assert len(r.logprobs) == len(model.token_ids(fits, True)) - 1


async def test_texts_with_nothing_to_score_give_empty_results(model: HFModel) -> None:
    normal = ScoreRequest(text="alpha beta", distribution=True, top_k=2)
    one_token = model.tokenizer.decode(model.token_ids("alpha", False)[:1])
    asks = [
        ScoreRequest(text="", add_bos=False, distribution=True, top_k=2),
        ScoreRequest(text=""),
        ScoreRequest(text=one_token, add_bos=False),
        normal,
    ]
    empty_no_bos, empty_bos, single, scored = await model.score(asks)
    assert empty_no_bos.logprobs == () and empty_no_bos.tokens == () and empty_no_bos.bos is False
    assert empty_no_bos.dist_mean == () and empty_no_bos.top == () and empty_no_bos.distribution == "exact"
    assert empty_bos.logprobs == () and empty_bos.bos is True
    assert single.logprobs == () and single.bos is False
    [alone] = await model.score([normal])
    assert scored.logprobs == pytest.approx(alone.logprobs, abs=1e-6) and len(scored.logprobs) > 0
    [only_empty] = await model.score([asks[0]])
    assert only_empty == empty_no_bos


async def test_generation_past_the_context_is_refused(model: HFModel) -> None:
    prompt = "alpha beta gamma"
    n_prompt = len(model.token_ids(prompt, True))
    with pytest.raises(ModelCallError, match=rf"prompt \({n_prompt} tokens\) plus max_tokens=40"):
        await model.generate([GenerateRequest(prompt=prompt, max_tokens=40)])
    [g] = await model.generate([GenerateRequest(prompt=prompt, max_tokens=MAX_POSITIONS - n_prompt)])
    assert len(g.completions) == 1


def test_identity_carries_the_dtype(micro_model_dir: Path, model: HFModel) -> None:
    fp32 = model.identity
    bf16 = HFModel(micro_model_dir, device="cpu", dtype="bfloat16").identity
    assert fp32.settings["dtype"] == "float32" and bf16.settings["dtype"] == "bfloat16"
    assert fp32.fingerprint == bf16.fingerprint and fp32.key != bf16.key
    # What computed the numbers is in the key: a fix or a library upgrade never replays old calls.
    assert fp32.settings["computation"].startswith("hf/") and "transformers=" in fp32.settings["computation"]
