"""The blind baseline on real benchmark text: fair splits pass, unfair references are caught."""

from __future__ import annotations

import random

import numpy as np
import pytest

from contam.benchmarks.builtin import gsm8k, humaneval
from contam.verdicts.baseline import _buckets, blind_baseline, features, fit_logistic, gram


@pytest.fixture(scope="module")
def gsm8k_questions() -> list[str]:
    return [item.prompt or item.text for item in gsm8k().partition("test").items]


def test_random_split_of_gsm8k_is_not_distinguished(gsm8k_questions: list[str]) -> None:
    questions = gsm8k_questions[:]
    random.Random(7).shuffle(questions)
    result = blind_baseline(questions[:300], questions[300:600], seed=0, bound=0.6)
    assert result is not None
    assert not result.distinguishes
    assert 0.4 < result.auroc < 0.6 and result.auroc_ci.low < 0.6
    assert (result.n, result.n_reference, result.bound) == (300, 300, 0.6)


def test_humaneval_against_gsm8k_is_distinguished(gsm8k_questions: list[str]) -> None:
    prompts = [item.prompt or item.text for item in humaneval().partition("test").items]
    result = blind_baseline(prompts, gsm8k_questions[:200], seed=1)
    assert result is not None and result.distinguishes and result.auroc > 0.95


def test_long_against_short_items_is_distinguished(gsm8k_questions: list[str]) -> None:
    by_length = sorted(gsm8k_questions, key=len)
    result = blind_baseline(by_length[-100:], by_length[:100], seed=2)
    assert result is not None and result.distinguishes and result.auroc > 0.95


def test_too_few_items_is_none_and_the_seed_fixes_the_result(gsm8k_questions: list[str]) -> None:
    assert blind_baseline(gsm8k_questions[:9], gsm8k_questions[9:60]) is None
    assert blind_baseline(gsm8k_questions[:10], gsm8k_questions[10:19]) is None
    a = blind_baseline(gsm8k_questions[:40], gsm8k_questions[40:80], seed=5)
    b = blind_baseline(gsm8k_questions[:40], gsm8k_questions[40:80], seed=5)
    assert a == b


def test_hashing_is_stable_across_processes() -> None:
    """Python's hash() is salted per process; the n-gram buckets must not be. Fixed values."""
    assert _buckets("abc").tolist() == [17232, 10756, 22834]  # "ab", "bc", then "abc"
    assert _buckets("héllo").tolist()[:4] == [10069, 4381, 31251, 28369]  # code points, not bytes
    assert len(_buckets("abcd")) == 3 + 2 + 1 and len(_buckets("a")) == 0  # 2-, 3- and 4-grams
    x = features(["the same text", "the same text", "another one entirely"]).toarray()  # type: ignore[attr-defined]
    assert np.allclose(x[0], x[1]) and not np.allclose(x[0], x[2])
    assert np.allclose(np.linalg.norm(x[:, :-2], axis=1), 1.0)


def test_kernel_form_fit_matches_the_primal_optimum() -> None:
    """The kernel-form Newton fit gives the primal L2 logistic regression's scores (scipy L-BFGS)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(float)
    d = x.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = x @ w + b
        r = expit(z) - y
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * w @ w), np.r_[x.T @ r + w, r.sum()]

    primal = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    a, b = fit_logistic(x @ x.T, y)
    assert np.allclose(x.T @ a, primal[:d], atol=1e-5) and b == pytest.approx(primal[d], abs=1e-5)
    from scipy import sparse

    assert np.allclose(gram(sparse.csr_matrix(x)), x @ x.T)


def test_large_sides_are_drawn_down_to_max_items(gsm8k_questions: list[str]) -> None:
    result = blind_baseline(gsm8k_questions[:700], gsm8k_questions[700:], seed=3, max_items=200)
    assert result is not None and (result.n, result.n_reference) == (200, 200)
    assert "at most 200 items a side drawn at random" in result.method and not result.distinguishes
