"""Prioritized sampling: a float64 :class:`SumTree`, the probability/weight math, and
:class:`PriorityBuffer`, the storage + policy that SSD-KD's distillation samples from.

See ``docs/benchmarks.md`` for speed and shared/design/SAMPLING.md for the semantics.
"""

from ssdkd.sampling.buffer import PriorityBuffer, PrioritySample
from ssdkd.sampling.reservoir import reservoir_slots
from ssdkd.sampling.schedules import linear_schedule
from ssdkd.sampling.sum_tree import SumTree
from ssdkd.sampling.weights import importance_weights, priority_leaves, sampling_probabilities

__all__ = [
    "PriorityBuffer",
    "PrioritySample",
    "SumTree",
    "importance_weights",
    "linear_schedule",
    "priority_leaves",
    "reservoir_slots",
    "sampling_probabilities",
]
