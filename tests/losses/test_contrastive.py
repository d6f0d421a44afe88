"""Properties of InfoNCE, CMI's contrastive term."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdkd.losses import InfoNCELoss, info_nce


def _vectors(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 9), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_a_query_is_best_served_by_its_own_view(
    batch: int, dim: int, count: int, seed: int
) -> None:
    """For fixed negatives the loss is minimal when the positive is the query itself."""
    query, negatives = _vectors(seed, batch, dim), _vectors(seed + 1, count, dim)
    other = _vectors(seed + 2, batch, dim)
    identical = info_nce(query, query.clone(), negatives)
    assert torch.all(identical <= info_nce(query, other, negatives) + 1e-12)
    # Scaling a vector changes nothing: the similarities are cosines.
    torch.testing.assert_close(info_nce(3 * query, query, 0.5 * negatives), identical)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 9), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_the_order_of_the_negatives_does_not_matter(
    batch: int, dim: int, count: int, seed: int
) -> None:
    query, positive = _vectors(seed, batch, dim), _vectors(seed + 1, batch, dim)
    negatives = _vectors(seed + 2, count, dim)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(
        info_nce(query, positive, negatives[order]), info_nce(query, positive, negatives)
    )
    # Shared negatives equal the same set given to every query.
    per_query = negatives.expand(batch, count, dim)
    torch.testing.assert_close(
        info_nce(query, positive, per_query), info_nce(query, positive, negatives)
    )


def test_info_nce_is_the_cross_entropy_of_the_positive_among_all_candidates() -> None:
    query, positive, negatives = _vectors(0, 4, 5), _vectors(1, 4, 5), _vectors(2, 7, 5)
    q, k, n = (F.normalize(t, dim=-1) for t in (query, positive, negatives))
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ n.T], dim=1) / 0.1
    expected = F.cross_entropy(logits, torch.zeros(4, dtype=torch.long), reduction="none")
    torch.testing.assert_close(info_nce(query, positive, negatives, temperature=0.1), expected)
    assert float(info_nce(query, query, torch.empty(0, 5)).abs().max()) == 0.0
    # One orthogonal negative at τ = 1: log(1 + e^{0 − 1}).
    e = torch.eye(2)
    value = info_nce(e[:1], e[:1], e[1:], temperature=1.0, reduction="sum")
    assert float(value) == pytest.approx(math.log(1 + math.exp(-1)))
    torch.testing.assert_close(
        InfoNCELoss(0.1, reduction="mean")(query, positive, negatives),
        info_nce(query, positive, negatives, temperature=0.1).mean(),
    )


def test_info_nce_rejects_bad_input_naming_the_argument() -> None:
    q = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="`negatives` of shape"):
        info_nce(q, q, torch.zeros(4, 5))
    with pytest.raises(ValueError, match="`query` and `positive` of the same shape"):
        info_nce(q, torch.zeros(3, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="`temperature`"):
        info_nce(q, q, torch.zeros(4, 3), temperature=0.0)
    with pytest.raises(TypeError, match="`negatives`"):
        info_nce(q, q, torch.zeros(4, 3, dtype=torch.long))
