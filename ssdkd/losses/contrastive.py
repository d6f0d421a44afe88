"""The contrastive term of CMI: InfoNCE of a view against its positive and a set of
negatives, on L2-normalised features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.losses._checks import check_float_tensor, check_number, check_reduction, reduce_batch

__all__ = ["InfoNCELoss", "info_nce"]


def info_nce(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor,
    *,
    temperature: float = 0.1,
    reduction: str = "none",
) -> Tensor:
    """InfoNCE, per sample: −log( e^{s⁺/τ} / (e^{s⁺/τ} + Σ_n e^{s_n/τ}) ).

    ``s⁺ = ⟨q̂, k̂⁺⟩`` is the cosine similarity of a query with its positive and
    ``s_n = ⟨q̂, k̂_n⟩`` with each negative (every vector L2-normalised here, so the inputs
    need not be). For fixed negatives the loss is smallest when the positive points the
    way of the query; it does not depend on the order of the negatives. CMI's term: a local
    view of a synthetic image (query) must find its own global view (positive) among the
    global views of other images (negatives, from a memory bank).

    Args:
        query: ``(B, D)`` the queries.
        positive: ``(B, D)`` each query's positive.
        negatives: ``(N, D)`` negatives shared by every query, or ``(B, N, D)`` one set
            per query; N ≥ 0.
        temperature: τ > 0 (CMI: 0.1).
        reduction: ``"none"`` → ``(B,)``, ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        ``(B,)`` or a scalar; each value ≥ 0 (> 0 with at least one negative; 0 without,
        as there is nothing to tell the positive from).

    Raises:
        TypeError: A non-floating-point input.
        ValueError: Shapes that do not match, a non-positive temperature or an unknown
            reduction.

    Examples:
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> info_nce(q, q, torch.empty(0, 2))  # no negative: nothing to tell apart
        tensor([0.])
        >>> info_nce(q, q, torch.tensor([[0.0, 1.0]]), temperature=1.0)  # log(1 + e^{-1})
        tensor([0.3133])
    """
    query = check_float_tensor("query", query)
    positive = check_float_tensor("positive", positive)
    negatives = check_float_tensor("negatives", negatives)
    tau = check_number("temperature", temperature, minimum=0.0, inclusive=False)
    reduction = check_reduction(reduction)
    if query.dim() != 2 or positive.shape != query.shape:
        raise ValueError(
            "Expected `query` and `positive` of the same shape (B, D), got "
            f"{tuple(query.shape)} and {tuple(positive.shape)}"
        )
    batch, dim = query.shape
    shared = negatives.dim() == 2 and negatives.shape[1] == dim
    per_query = negatives.dim() == 3 and negatives.shape[0] == batch and negatives.shape[2] == dim
    if not (shared or per_query):
        raise ValueError(
            f"Expected `negatives` of shape (N, {dim}) or ({batch}, N, {dim}), got "
            f"{tuple(negatives.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(query.dtype, positive.dtype), negatives.dtype)
    q = F.normalize(query.to(dtype), dim=1)
    k = F.normalize(positive.to(dtype), dim=1)
    n = F.normalize(negatives.to(dtype), dim=-1)
    positive_logit = (q * k).sum(dim=1, keepdim=True) / tau
    if shared:
        negative_logits = q @ n.transpose(0, 1) / tau
    else:
        negative_logits = torch.einsum("bd,bnd->bn", q, n) / tau
    logits = torch.cat([positive_logit, negative_logits], dim=1)
    loss = torch.logsumexp(logits, dim=1) - positive_logit.squeeze(1)
    return reduce_batch(loss, reduction)


class InfoNCELoss(nn.Module):
    """Module twin of :func:`info_nce`.

    Examples:
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> InfoNCELoss(temperature=1.0, reduction="mean")(q, q, torch.tensor([[0.0, 1.0]]))
        tensor(0.3133)
    """

    def __init__(self, temperature: float = 0.1, reduction: str = "none") -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, minimum=0.0, inclusive=False)
        self.reduction = check_reduction(reduction)

    def forward(self, query: Tensor, positive: Tensor, negatives: Tensor) -> Tensor:
        """See :func:`info_nce`."""
        return info_nce(
            query, positive, negatives, temperature=self.temperature, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}"
