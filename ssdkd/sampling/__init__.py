"""Prioritized sampling: a float64 :class:`SumTree`, the probability/weight math, a
:class:`FieldStorage` of named tensors, a :class:`PrioritySampler` over slots,
:class:`PriorityBuffer`, the two composed, which SSD-KD's distillation samples from, the
refresh policies of a full buffer (:func:`admit`: FIFO, reservoir, lowest score), a
:class:`FeatureBank` (a memory bank of features drawn uniformly), and the global
reductions a data-parallel loop needs (:mod:`ssdkd.sampling.collective`).

See ``docs/concepts/sampling.md`` for the semantics and ``docs/results.md`` for speed.
"""

from ssdkd.sampling.bank import FeatureBank
from ssdkd.sampling.buffer import PriorityBuffer, PrioritySample
from ssdkd.sampling.collective import (
    all_reduce_sum,
    global_class_counts,
    global_mean_normalized,
)
from ssdkd.sampling.refresh import REFRESH_POLICIES, RefreshPolicy, admit
from ssdkd.sampling.reservoir import reservoir_slots
from ssdkd.sampling.sampler import PriorityDraw, PrioritySampler
from ssdkd.sampling.schedules import linear_schedule
from ssdkd.sampling.storage import FieldStorage
from ssdkd.sampling.sum_tree import SumTree
from ssdkd.sampling.weights import importance_weights, priority_leaves, sampling_probabilities

__all__ = [
    "REFRESH_POLICIES",
    "FeatureBank",
    "FieldStorage",
    "PriorityBuffer",
    "PriorityDraw",
    "PrioritySample",
    "PrioritySampler",
    "RefreshPolicy",
    "SumTree",
    "admit",
    "all_reduce_sum",
    "global_class_counts",
    "global_mean_normalized",
    "importance_weights",
    "linear_schedule",
    "priority_leaves",
    "reservoir_slots",
    "sampling_probabilities",
]
