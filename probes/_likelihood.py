"""Pure math shared by the likelihood probes, each formula written once.

Conventions follow the official code of the papers (detect-pretrain-code for Shi et al. 2023,
mink-plus-plus for Zhang et al. 2024, test_set_contamination for Oren et al. 2023), with the sign
turned so that every score is "higher = more likely seen".
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contam.errors import ModelCallError
from contam.models.base import ScoreResult


def lowest_fraction_mean(values: Sequence[float], k: float) -> tuple[float, int]:
    """Mean of the lowest `k` fraction of `values`, and how many were averaged.

    The official code takes `int(len * k)` values, which is zero for short texts and gives NaN;
    we average at least one so every scored text gets a finite score.
    """
    if not values:
        return math.nan, 0
    count = max(1, int(len(values) * k))
    lowest = np.sort(np.asarray(values, dtype=np.float64))[:count]
    return float(lowest.mean()), count


# z of a token at a one-hot position that is not the mode: -inf in the limit, kept finite here.
DEGENERATE_Z = -1e6


def mink_pp_token_scores(result: ScoreResult) -> list[float]:
    """(log p(x_t) - mu_t) / sigma_t per token, mu and sigma of log p under the next-token distribution.

    Where sigma is 0 the distribution is a point mass at log p = mu: the mode scores 0 (exactly
    typical) and any other token `DEGENERATE_Z`.
    """
    if result.dist_mean is None or result.dist_std is None:
        raise ValueError("Min-K%++ needs per-position distribution statistics (ScoreRequest.distribution)")
    lp = np.asarray(result.logprobs, dtype=np.float64)
    mu = np.asarray(result.dist_mean, dtype=np.float64)
    sigma = np.asarray(result.dist_std, dtype=np.float64)
    if not lp.shape == mu.shape == sigma.shape:
        raise ValueError("Min-K%++ needs one mean and one std per scored token")
    flat = sigma <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lp - mu) / np.where(flat, 1.0, sigma)
    # 0.0 for a non-mode token would call what the model held impossible "typical" (toward "seen").
    mode = np.isclose(lp, mu, rtol=1e-6, atol=1e-6) | (lp > mu)  # tolerance: float32 backends
    z = np.where(flat, np.where(mode, 0.0, DEGENERATE_Z), z)
    return [float(v) for v in z]


def zlib_bytes(text: str) -> int:
    """Length of the zlib-compressed UTF-8 text (default level, as in the official code)."""
    return len(zlib.compress(text.encode("utf-8")))


# -- the sharded exchangeability test (Oren et al. 2023) ---------------------------------------


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous shards of `n` examples in their given order; the first `n % shards` get one more."""
    if shards < 1 or n < shards:
        raise ValueError(f"cannot split {n} examples into {shards} shards")
    counts = [n // shards + (1 if i < n % shards else 0) for i in range(shards)]
    bounds, start = [], 0
    for c in counts:
        bounds.append((start, start + c))
        start += c
    return bounds


def sharded_t_test(
    canonical: Sequence[float], permuted: Sequence[Sequence[float]], *, exact_t: bool = False
) -> tuple[float, float]:
    """One-sided t-test across shards that canonical log-likelihood exceeds the permuted mean.

    By default exactly the official statistic: z = mean(d) / std(d) * sqrt(m) with the population
    std (numpy's default, ddof=0), p = 1 - T_{m-1}(z); that z is the t statistic inflated by
    sqrt(m / (m - 1)), so p is slightly too small for few shards (see `official_t_size`).
    `exact_t` uses the sample std (ddof=1): the one-sample t test. Returns (z, p).
    """
    from scipy.stats import t as tdist

    canon = np.asarray(canonical, dtype=np.float64)
    perm = np.asarray(permuted, dtype=np.float64)
    if canon.ndim != 1 or perm.shape[0] != canon.shape[0] or canon.size < 2:
        raise ValueError("need one canonical value and a row of permuted values for each of >= 2 shards")
    diffs = canon - perm.mean(axis=1)
    sd = float(diffs.std(ddof=1 if exact_t else 0))
    if sd == 0.0:
        # Identical differences (all zero when order cannot matter): the t statistic is undefined;
        # p = 1 for no evidence keeps the false-positive guarantee.
        mean = float(diffs.mean())
        return (math.inf, 0.0) if mean > 0 else (0.0 if mean == 0 else -math.inf, 1.0)
    z = float(diffs.mean()) / sd * math.sqrt(diffs.size)
    return z, float(tdist.sf(z, df=diffs.size - 1))


def official_t_size(shards: int, alpha: float = 0.05) -> float:
    """The real false-positive rate of the official (ddof=0) statistic at nominal `alpha`, for
    normal shard differences: P(T_{m-1} > t_crit * sqrt((m - 1) / m)).
    """
    from scipy.stats import t as tdist

    df = shards - 1
    return float(tdist.sf(tdist.isf(alpha, df) * math.sqrt(df / shards), df))


@dataclass(frozen=True, slots=True)
class Window:
    """A slice of a long text scored alone; only tokens starting at or after `count_from` count."""

    start: int
    end: int
    count_from: int


def windows(length: int, context: int, stride: int) -> list[Window]:
    """The official sliding windows, in characters: window j covers [j*s, j*s + c); after the first,
    a window counts only what follows the previous window's end, so each position counts once.
    """
    if not 0 < stride <= context:
        raise ValueError("need 0 < stride <= context")
    steps = math.ceil(max(0, length - context) / stride)
    out = []
    for j in range(steps + 1):
        start = j * stride
        out.append(Window(start, min(start + context, length), start if j == 0 else start + context - stride))
    return out


def window_loglik(window: Window, result: ScoreResult, text: str | None = None) -> float:
    """Sum of the log-probs of the window's tokens that start at or after `count_from`.

    Tokens join back into the scored text (backends report them so), which gives their offsets;
    without a BOS the first token has no log-prob, so offsets are counted from the text's end.
    Token texts that do not join back (a tokenizer that normalises text or drops spaces when
    decoding one token) would shift every offset, so they raise `ModelCallError`; `text`, the
    window's text, makes the check exact rather than by length only.
    """
    piece_len = window.end - window.start
    joined = "".join(result.tokens)
    # Without a BOS the unscored first token is missing, so the tokens cover only a suffix.
    fits = len(joined) == piece_len if result.bos else len(joined) <= piece_len
    if fits and text is not None:
        fits = joined == text if result.bos else text.endswith(joined)
    if not fits or (text is not None and len(text) != piece_len):
        raise ModelCallError(
            f"tokenizer mismatch: the {len(result.tokens)} token texts join to {len(joined)} characters "
            f"({joined[:40]!r}...), not the scored window's {piece_len} ({(text or '')[:40]!r}...); "
            "windowed log-likelihoods need token texts that join back into the text"
        )
    offset = window.start + piece_len - len(joined)
    total = 0.0
    for token, lp in zip(result.tokens, result.logprobs, strict=True):
        if offset >= window.count_from:
            total += lp
        offset += len(token)
    return total
