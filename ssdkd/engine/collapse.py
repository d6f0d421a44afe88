"""The engine's mode-collapse warning: what a round record says about collapse, in words.

The records of :func:`~ssdkd.engine.runner.run_rounds` carry class-coverage diagnostics
(see :mod:`ssdkd.methods.diagnostics`): the normalised class entropy of the synthetic data
(``data_class_entropy`` for the buffer or pool the student learns from,
``synth_class_entropy`` for the round's synthetic batch) and the share of evaluation
images given the student's most frequent predicted class (``eval_top_class_share``).
:func:`collapse_message` turns a record whose numbers cross the thresholds into one
sentence for the user; the engine issues it as a :class:`CollapseWarning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_MAX_TOP_CLASS_SHARE",
    "DEFAULT_MIN_CLASS_ENTROPY",
    "CollapseWarning",
    "check_collapse_thresholds",
    "collapse_message",
]

DEFAULT_MIN_CLASS_ENTROPY = 0.5
"""Synthetic data whose normalised class entropy is below this has collapsed onto few
classes (0.5 is, for 10 classes, about the entropy of data spread evenly over 3 of them)."""

DEFAULT_MAX_TOP_CLASS_SHARE = 0.5
"""A student that gives one class to at least this share of the evaluation images has
collapsed (for a balanced 10-class test set the share is about 0.1)."""

_DATA_ADVICE = (
    "For synthetic data on few classes: a class-conditional generator "
    "(`conditional_generator=True`) or a longer generator warm-up (`warmup_rounds`), and "
    "check that `normalization` is the mean/std the teacher was trained with."
)
_STUDENT_ADVICE = (
    "For a student on one class: a lower student learning rate (`student_lr`; a student "
    "that cannot fit its own synthetic data diverges this way), and check that "
    "`normalization` is the mean/std the teacher was trained with."
)


class CollapseWarning(UserWarning):
    """A run's synthetic data or its student has collapsed onto few classes.

    Issued at most once per run by :func:`~ssdkd.engine.runner.run_rounds`; silence it
    with ``warnings.simplefilter("ignore", CollapseWarning)`` or turn it into an error
    with ``"error"``.
    """


def _check_share(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `{name}` to be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `{name}` to be a number in [0, 1], got {value!r}")


def check_collapse_thresholds(min_class_entropy: float, max_top_class_share: float) -> None:
    """Validate the two thresholds of :func:`collapse_message`.

    Raises:
        TypeError: A threshold is not a number.
        ValueError: A threshold is outside [0, 1].
    """
    _check_share("min_class_entropy", min_class_entropy)
    _check_share("max_top_class_share", max_top_class_share)


def collapse_message(
    record: Mapping[str, Any],
    *,
    min_class_entropy: float = DEFAULT_MIN_CLASS_ENTROPY,
    max_top_class_share: float = DEFAULT_MAX_TOP_CLASS_SHARE,
) -> str | None:
    """The collapse warning a round record calls for, or ``None`` for a healthy round.

    Two signs are read, each only when its key is in the record (methods report different
    diagnostics; a run without evaluation data has no ``eval_top_class_share``):

    - the synthetic data covers few classes: ``data_class_entropy`` (or, when a method
      does not report it, ``synth_class_entropy``) ``< min_class_entropy``;
    - the student predicts one class for most evaluation images:
      ``eval_top_class_share >= max_top_class_share``.

    Args:
        record: One round's record (``round`` and the diagnostic keys above).
        min_class_entropy: Threshold of the normalised class entropy, in [0, 1]; 0 never
            warns.
        max_top_class_share: Threshold of the student's top-class share, in [0, 1].

    Returns:
        One paragraph naming the round, what was seen with its numbers, and what usually
        helps; ``None`` when neither sign is present.

    Raises:
        TypeError: A threshold is not a number.
        ValueError: A threshold is outside [0, 1].

    Examples:
        >>> collapse_message({"round": 3, "data_class_entropy": 0.9})
        >>> collapsed = {"round": 3, "eval_top_class_share": 0.8}
        >>> print(collapse_message(collapsed))  # doctest: +ELLIPSIS
        Round 3: the student predicts the same class for 80% of the evaluation images \
(warning threshold 50%), so it has collapsed onto one class. For a student on one ...
    """
    check_collapse_thresholds(min_class_entropy, max_top_class_share)
    seen, advice = [], []
    entropy_key = "data_class_entropy" if "data_class_entropy" in record else "synth_class_entropy"
    entropy = record.get(entropy_key)
    if entropy is not None and entropy < min_class_entropy:
        source = (
            "the synthetic data the student learns from"
            if entropy_key == "data_class_entropy"
            else "this round's synthetic batch"
        )
        seen.append(
            f"the teacher's classes in {source} have a normalised entropy of {entropy:.2f} "
            f"(warning threshold {min_class_entropy:.2f}; 1 = all classes equally often, "
            "0 = a single class), so the synthetic data has collapsed onto few classes"
        )
        advice.append(_DATA_ADVICE)
    share = record.get("eval_top_class_share")
    if share is not None and share >= max_top_class_share:
        seen.append(
            f"the student predicts the same class for {share:.0%} of the evaluation images "
            f"(warning threshold {max_top_class_share:.0%}), so it has collapsed onto one class"
        )
        advice.append(_STUDENT_ADVICE)
    if not seen:
        return None
    return f"Round {record['round']}: {'; and '.join(seen)}. {' '.join(advice)}"
