"""Schedules for annealing sampling hyper-parameters (β of importance sampling)."""

from __future__ import annotations

import math

__all__ = ["linear_schedule"]


def linear_schedule(start: float, end: float, step: int, total_steps: int) -> float:
    """Linear interpolation from ``start`` to ``end`` over ``total_steps``, clamped.

    ``start + (end − start) · min(step, total_steps) / total_steps``; with
    ``total_steps == 0`` the schedule is already finished and returns ``end``.

    Args:
        start: Value at step 0.
        end: Value from ``total_steps`` on.
        step: Current step, ≥ 0.
        total_steps: Length of the ramp, ≥ 0.

    Returns:
        The scheduled value.

    Raises:
        ValueError: A value is not finite, or a step count is negative or not an int.

    Examples:
        >>> linear_schedule(0.4, 1.0, 50, 100)
        0.7
        >>> linear_schedule(0.4, 1.0, 500, 100)
        1.0
    """
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"Expected `{name}` to be a float, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"Expected `{name}` to be finite, got {value!r}")
    for name, count in (("step", step), ("total_steps", total_steps)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"Expected `{name}` to be an int >= 0, got {count!r}")
    if total_steps == 0 or step >= total_steps:
        return float(end)
    return float(start + (end - start) * (step / total_steps))
