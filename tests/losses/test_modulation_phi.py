"""diversity_difficulty_weights (φ) and DiversityDifficultyModulator: values and errors."""

from __future__ import annotations

import math

import pytest
import torch

from ssdkd.losses import DiversityDifficultyModulator, diversity_difficulty_weights


def test_known_values_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    counts = torch.tensor([3, 1])
    # c_T = [0, 0, 1]; frequencies 3/4, 3/4, 1/4; p_T = [1/2, σ(2), σ(2)].
    sig2 = 1 / (1 + math.exp(-2.0))
    expected = torch.tensor([0.25 * 0.5**2, 0.25 * (1 - sig2) ** 2, 0.75 * (1 - sig2) ** 2])
    torch.testing.assert_close(diversity_difficulty_weights(logits, counts), expected)


def test_matches_a_per_sample_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64) * 3
    counts = torch.tensor([5.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    got = diversity_difficulty_weights(logits, counts, gamma=1.5)
    for i in range(7):
        probs = torch.softmax(logits[i], 0).tolist()
        c = max(range(4), key=lambda k: probs[k])
        expected = (1 - counts[c].item() / 8.0) * (1 - probs[c]) ** 1.5
        assert got[i].item() == pytest.approx(expected, rel=1e-12)


def test_empty_buffer_gives_diversity_one() -> None:
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    phi = diversity_difficulty_weights(logits, torch.zeros(3), gamma=0.0)
    assert phi.tolist() == [1.0, 1.0]


def test_targets_read_the_target_probability_but_keep_the_teacher_class() -> None:
    logits = torch.tensor([[0.0, 2.0]])  # teacher predicts class 1 with p = σ(2)
    counts = torch.tensor([0, 4])  # class 1 fills the buffer: diversity 0 for c_T = 1
    assert diversity_difficulty_weights(logits, counts, targets=torch.tensor([0])).item() == 0.0
    counts = torch.tensor([2, 2])
    p_target = torch.softmax(logits[0], 0)[0]
    got = diversity_difficulty_weights(logits, counts, gamma=1.0, targets=torch.tensor([0]))
    assert got.item() == pytest.approx(0.5 * (1 - p_target.item()))


def test_output_is_detached_and_float32_for_half_logits() -> None:
    logits = torch.randn(3, 2, requires_grad=True)
    phi = diversity_difficulty_weights(logits, torch.tensor([1, 1]))
    assert not phi.requires_grad
    assert phi.grad_fn is None
    half = diversity_difficulty_weights(logits.detach().half(), torch.tensor([1, 1]))
    assert half.dtype == torch.float32
    double = diversity_difficulty_weights(logits.detach().double(), torch.tensor([1, 1]))
    assert double.dtype == torch.float64


@pytest.mark.parametrize("confidence", ["target", "max"])
@pytest.mark.parametrize("diversity_class", ["target", "predicted"])
def test_module_equals_function_in_every_reading(confidence: str, diversity_class: str) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=gen)
    counts = torch.tensor([1, 2, 3])
    targets = torch.tensor([0, 1, 2, 0, 1])
    phi = DiversityDifficultyModulator(
        gamma=1.0, confidence=confidence, diversity_class=diversity_class
    )
    expected = diversity_difficulty_weights(
        logits,
        counts,
        gamma=1.0,
        targets=targets if confidence == "target" else None,
        class_labels=targets if diversity_class == "target" else None,
    )
    given = targets if phi.needs_targets else None
    torch.testing.assert_close(phi(logits, counts, given), expected)
    torch.testing.assert_close(phi.task_weights(logits, counts, given), expected / expected.mean())


def test_module_checks_targets_usage_and_arguments() -> None:
    logits, counts = torch.randn(5, 3), torch.tensor([1, 2, 3])
    targets = torch.tensor([0, 1, 2, 0, 1])
    default = DiversityDifficultyModulator(gamma=1.0)
    literal = DiversityDifficultyModulator(confidence="max", diversity_class="predicted")
    with pytest.raises(ValueError, match=r"Expected `targets` \(confidence='target'"):
        default(logits, counts)
    with pytest.raises(ValueError, match=r"Expected no `targets`"):
        literal(logits, counts, targets)
    assert "gamma=1.0" in repr(default)
    with pytest.raises(ValueError, match=r"`gamma` to be finite, >= 0\.0, got -1\.0"):
        DiversityDifficultyModulator(gamma=-1.0)
    with pytest.raises(ValueError, match=r"`confidence` to be one of \('target', 'max'\)"):
        DiversityDifficultyModulator(confidence="mean")
    batch = DiversityDifficultyModulator(gamma=1.0, normalization="batch")
    torch.testing.assert_close(
        batch.task_weights(logits, counts, targets), batch(logits, counts, targets)
    )


def test_phi_keeps_the_difficulty_of_a_very_confident_teacher_in_float32() -> None:
    """Prevents φ underflowing to exactly 0 in float32: at a logit margin of 18,
    ``1 − softmax`` rounds to 0 while 1 − p ≈ 1.5e-8, so (1 − p)² ≈ 2.3e-16 > 0."""
    logits = torch.tensor([[18.0, 0.0]])
    phi = diversity_difficulty_weights(logits, torch.tensor([0, 0]), gamma=2.0)
    exact = diversity_difficulty_weights(logits.double(), torch.tensor([0, 0]), gamma=2.0)
    assert float(phi) > 0.0
    assert float(phi) == pytest.approx(float(exact), rel=1e-5)


def test_validate_false_skips_value_checks() -> None:
    logits = torch.tensor([[float("nan"), 0.0]])
    phi = diversity_difficulty_weights(logits, torch.tensor([1, 1]), validate=False)
    assert phi.shape == (1,)


@pytest.mark.parametrize(
    ("logits", "counts", "kwargs", "error", "match"),
    [
        (
            torch.zeros(2),
            torch.zeros(2),
            {},
            ValueError,
            r"`teacher_logits` to have shape \(B, K\)",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(2),
            {},
            ValueError,
            r"`class_counts` to have shape \(3,\) .* got \(2,\)",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(1, 3),
            {},
            ValueError,
            r"`class_counts` to have shape \(3,\)",
        ),
        (
            torch.zeros(2, 3),
            [1, 2, 3],
            {},
            TypeError,
            "`class_counts` to be a torch.Tensor, got list",
        ),
        (
            torch.zeros(2, 3),
            torch.ones(3, dtype=torch.bool),
            {},
            TypeError,
            "`class_counts` to hold integer",
        ),
        (
            torch.zeros(2, 3),
            torch.tensor([1, -1, 0]),
            {},
            ValueError,
            r"non-negative, got \[1, -1, 0\]",
        ),
        (
            torch.tensor([[0.0, float("nan"), 0.0]]),
            torch.zeros(3),
            {},
            ValueError,
            "`teacher_logits` without NaN",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(3),
            {"gamma": -0.5},
            ValueError,
            "`gamma` to be finite, >= 0.0, got -0.5",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(3),
            {"targets": torch.tensor([0])},
            ValueError,
            r"`targets` to have shape \(2,\)",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(3),
            {"targets": torch.tensor([0.0, 1.0])},
            TypeError,
            "`targets` to hold integer",
        ),
        (
            torch.zeros(2, 3),
            torch.zeros(3),
            {"targets": torch.tensor([0, 3])},
            ValueError,
            r"`targets` in \[0, 3\), got values from 0 to 3",
        ),
        (
            torch.zeros(2, 3, dtype=torch.long),
            torch.zeros(3),
            {},
            TypeError,
            "`teacher_logits` to be a floating",
        ),
    ],
)
def test_invalid_input_raises(
    logits: object, counts: object, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        diversity_difficulty_weights(logits, counts, **kwargs)  # type: ignore[arg-type]
