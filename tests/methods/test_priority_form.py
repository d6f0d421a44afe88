"""The effective sampling exponent of SSD-KD's two priority forms, measured."""

from __future__ import annotations

import pytest
import torch

from ssdkd.methods.ssd_kd import priority_of
from ssdkd.sampling import PriorityBuffer


def _effective_exponent(form: str, alpha: float, beta: float) -> float:
    """Slope of log P(i) on log KL_i after feeding KD-like updates to a buffer.

    N items with fixed log-normal KL; each step draws B items and sets their priority to
    ``priority_of(KL, w, form)`` with the buffer's own (mean-normalised) weights, as
    ``SSDKD.distill_step`` does.
    """
    gen = torch.Generator().manual_seed(0)
    n, batch, steps = 1000, 64, 4000
    kl = torch.exp(torch.randn(n, generator=gen, dtype=torch.float64))
    buffer = PriorityBuffer(n, alpha=alpha, beta=beta, generator=torch.Generator().manual_seed(1))
    buffer.extend(priorities=torch.ones(n, dtype=torch.float64), item=torch.arange(n))
    for _ in range(steps):
        sample = buffer.sample(batch)
        index = sample.data["item"]
        delta = priority_of(kl[index], sample.weights.to(torch.float64), form)
        buffer.update_priorities(sample.indices, delta, generations=sample.generations)
    priorities = buffer.priorities(torch.arange(n))
    x, y = kl.log(), (priorities + buffer.eps).pow(alpha).log()
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


@pytest.mark.parametrize(("beta", "expected"), [(0.4, 0.6 / 1.24), (1.0, 0.6 / 1.6)])
def test_the_papers_form_flattens_the_sampling_to_alpha_over_one_plus_alpha_beta(
    beta: float, expected: float
) -> None:
    """δ = w·KL with w ∝ P^(−β) converges to P ∝ KL^(α/(1+αβ)), not KL^α."""
    assert _effective_exponent("w-kl", 0.6, beta) == pytest.approx(expected, abs=0.02)


def test_standard_prioritised_replay_samples_with_alpha_itself() -> None:
    assert _effective_exponent("kl", 0.6, 0.4) == pytest.approx(0.6, abs=0.01)


def test_an_unknown_form_is_refused() -> None:
    with pytest.raises(ValueError, match="`form` 'w-kl' or 'kl', got 'wkl'"):
        priority_of(torch.ones(1), torch.ones(1), "wkl")
