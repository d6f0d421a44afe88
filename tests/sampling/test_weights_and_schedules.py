"""The pure probability/weight functions and the β schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ssdkd.sampling import (
    importance_weights,
    linear_schedule,
    priority_leaves,
    sampling_probabilities,
)

positive = st.floats(min_value=1e-12, max_value=1e12)


@pytest.mark.property
@given(leaves=st.lists(positive, min_size=1, max_size=50), beta=st.floats(0.0, 1.0))
def test_weights_are_in_unit_interval_with_one_at_the_minimum(
    leaves: list[float], beta: float
) -> None:
    x = torch.tensor(leaves, dtype=torch.float64)
    w = importance_weights(x, x.min(), beta)
    assert torch.isfinite(w).all()
    assert (w > 0).all()
    assert (w <= 1).all()
    assert (w[x == x.min()] == 1).all()
    # The same formula on a numpy array (the CPU fast path) agrees to pow's rounding.
    host = importance_weights(x.numpy(), x.min().item(), beta)
    assert isinstance(host, np.ndarray)
    np.testing.assert_allclose(host, w.numpy(), rtol=1e-14)


@pytest.mark.property
@given(leaves=st.lists(positive, min_size=1, max_size=50), beta=st.floats(0.0, 1.0))
def test_weight_normalisation_equals_max_normalised_n_p_power(
    leaves: list[float], beta: float
) -> None:
    """(N·P(i))^(−β) / max_j (N·P(j))^(−β) reduces to (l_i / l_min)^(−β)."""
    x = torch.tensor(leaves, dtype=torch.float64)
    p = sampling_probabilities(x, x.sum())
    raw = (len(leaves) * p) ** -beta
    torch.testing.assert_close(
        importance_weights(x, x.min(), beta), raw / raw.max(), rtol=1e-9, atol=0
    )


def test_beta_zero_gives_ones_and_underflow_stays_positive() -> None:
    x = torch.tensor([1.0, 1e300], dtype=torch.float64)
    assert importance_weights(x, 1e-300, 0.0).tolist() == [1.0, 1.0]
    assert (importance_weights(x, 1e-300, 1.0) > 0).all()


def test_priority_leaves_and_probabilities() -> None:
    raw = torch.tensor([0.0, 8.0], dtype=torch.float64)
    assert priority_leaves(raw, 1 / 3, 1.0).tolist() == pytest.approx([1.0, 9 ** (1 / 3)])
    assert priority_leaves(raw, 0.0, 1.0).tolist() == [1.0, 1.0]
    probs = sampling_probabilities(torch.tensor([1.0, 3.0]), torch.tensor(4.0))
    assert probs.dtype == torch.float64
    assert probs.tolist() == [0.25, 0.75]


def test_linear_schedule_interpolates_and_clamps() -> None:
    assert linear_schedule(0.4, 1.0, 0, 10) == 0.4
    assert linear_schedule(0.4, 1.0, 5, 10) == pytest.approx(0.7)
    assert linear_schedule(0.4, 1.0, 10, 10) == 1.0
    assert linear_schedule(0.4, 1.0, 99, 10) == 1.0
    assert linear_schedule(1.0, 0.0, 3, 4) == pytest.approx(0.25)
    assert linear_schedule(0.4, 1.0, 0, 0) == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((math.nan, 1.0, 0, 1), "`start` to be finite, got nan"),
        ((0.0, math.inf, 0, 1), "`end` to be finite"),
        ((0.0, 1.0, -1, 1), "`step` to be an int >= 0, got -1"),
        ((0.0, 1.0, 0, 2.5), "`total_steps` to be an int >= 0, got 2.5"),
    ],
)
def test_linear_schedule_rejects_bad_arguments(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        linear_schedule(*args)
