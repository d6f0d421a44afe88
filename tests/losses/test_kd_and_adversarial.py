"""KD, adversarial KL, JS competition and logit L1: known values, loop references, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ssdkd.losses import adversarial_kl, js_competition, kd_kl_div, logit_l1


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def _softmax(z: list[float], t: float) -> list[float]:
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 5, generator=gen, dtype=torch.float64), torch.randn(
        6, 5, generator=gen, dtype=torch.float64
    )


def test_kd_known_value_by_hand() -> None:
    # T = 2: p_t = softmax([0, 1]) = [1/(1+e), e/(1+e)], p_s = [1/2, 1/2].
    p0 = 1 / (1 + math.e)
    expected = 4 * (p0 * math.log(2 * p0) + (1 - p0) * math.log(2 * (1 - p0)))
    got = kd_kl_div(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2.0]]), temperature=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.4438, abs=1e-4)


def test_kd_matches_a_per_sample_loop_and_torch_kl_div() -> None:
    s, t = _batch()
    got = kd_kl_div(s, t, temperature=3.0)
    loop = [9 * _kl(_softmax(t[i].tolist(), 3.0), _softmax(s[i].tolist(), 3.0)) for i in range(6)]
    torch.testing.assert_close(got, torch.tensor(loop, dtype=torch.float64))
    torch_kl = F.kl_div(
        F.log_softmax(s / 3, 1), F.log_softmax(t / 3, 1), log_target=True, reduction="batchmean"
    )
    torch.testing.assert_close(
        kd_kl_div(s, t, temperature=3.0, reduction="batchmean"), 9 * torch_kl
    )


def test_kd_is_zero_for_equal_logits_and_finite_for_extreme_teachers() -> None:
    s = torch.tensor([[1.0, -2.0, 0.5]])
    assert kd_kl_div(s, s).item() == pytest.approx(0.0, abs=1e-7)
    extreme = kd_kl_div(torch.zeros(1, 3), torch.tensor([[1000.0, -1000.0, 0.0]]))
    assert torch.isfinite(extreme).all()
    assert extreme.item() == pytest.approx(math.log(3), rel=1e-5)


def test_adversarial_kl_known_value_and_mask() -> None:
    s = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    t = torch.tensor([[0.0, 3.0], [0.0, 3.0]])
    expected = -_kl(_softmax([0.0, 3.0], 1.0), _softmax([0.0, 1.0], 1.0))
    got = adversarial_kl(s, t)
    assert got[0].item() == pytest.approx(expected, rel=1e-6)
    assert got[1].item() == 0.0
    assert not torch.signbit(got[1])  # +0, not −0


def test_adversarial_kl_is_masked_negative_kd() -> None:
    s, t = _batch()
    s[:3] = t[:3] + 0.1 * s[:3]  # the first samples agree with the teacher
    loop = []
    for i in range(6):
        agree = int(s[i].argmax()) == int(t[i].argmax())
        kl = 4 * _kl(_softmax(t[i].tolist(), 2.0), _softmax(s[i].tolist(), 2.0))
        loop.append(-kl if agree else 0.0)
    torch.testing.assert_close(
        adversarial_kl(s, t, temperature=2.0), torch.tensor(loop, dtype=torch.float64)
    )
    agree = s.argmax(1) == t.argmax(1)
    assert 0 < int(agree.sum()) < 6  # the batch exercises both branches


def test_masked_samples_get_no_gradient() -> None:
    s = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 3.0], [0.0, 3.0]], requires_grad=True)
    adversarial_kl(s, t).sum().backward()
    assert s.grad is not None
    assert t.grad is not None
    assert s.grad[1].abs().sum() == 0
    assert t.grad[1].abs().sum() == 0
    assert s.grad[0].abs().sum() > 0


def test_js_competition_known_values() -> None:
    # Equal distributions: JS = 0. Disjoint (one-hot on different classes): JS = ln 2.
    s = torch.tensor([[0.0, 0.0], [-100.0, 100.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0], [100.0, -100.0]], dtype=torch.float64)
    got = js_competition(s, t, temperature=1.0)
    torch.testing.assert_close(got, torch.tensor([1.0, 1.0 - math.log(2)], dtype=torch.float64))


def test_js_competition_matches_a_per_sample_loop_and_is_symmetric() -> None:
    s, t = _batch()
    loop = []
    for i in range(6):
        p, q = _softmax(s[i].tolist(), 3.0), _softmax(t[i].tolist(), 3.0)
        m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
        loop.append(1 - 0.5 * _kl(p, m) - 0.5 * _kl(q, m))
    got = js_competition(s, t)
    torch.testing.assert_close(got, torch.tensor(loop, dtype=torch.float64))
    torch.testing.assert_close(js_competition(t, s), got)
    assert ((got >= 1 - math.log(2)) & (got <= 1)).all()


def test_logit_l1_known_value_and_torch_reference() -> None:
    got = logit_l1(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 5.0]]))
    assert got.tolist() == [2.0]
    s, t = _batch()
    torch.testing.assert_close(logit_l1(s, t, reduction="mean"), F.l1_loss(s, t))


LOSSES = [kd_kl_div, adversarial_kl, js_competition, logit_l1]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("student", "teacher", "match"),
    [
        (torch.zeros(2, 3), torch.zeros(3, 3), r"same shape \(B, K\), got \(2, 3\) and \(3, 3\)"),
        (torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), r"`student_logits` to have shape \(B, K\)"),
        (torch.zeros(2, 3), torch.zeros(6), r"`teacher_logits` to have shape \(B, K\)"),
        (torch.zeros(0, 3), torch.zeros(0, 3), "at least one sample"),
    ],
)
def test_wrong_shapes_raise(
    loss: object, student: torch.Tensor, teacher: torch.Tensor, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        loss(student, teacher)  # type: ignore[operator]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_non_tensor_logits_raise(loss: object) -> None:
    with pytest.raises(TypeError, match=r"`student_logits` to be a torch\.Tensor, got list"):
        loss([[0.0]], torch.zeros(1, 1))  # type: ignore[operator]


@pytest.mark.parametrize("loss", [kd_kl_div, adversarial_kl, js_competition])
@pytest.mark.parametrize(
    ("temperature", "error", "match"),
    [
        (0.0, ValueError, "`temperature` to be finite, > 0.0, got 0.0"),
        (-1.0, ValueError, "got -1.0"),
        (float("nan"), ValueError, "got nan"),
        (float("inf"), ValueError, "got inf"),
        ("3", TypeError, "`temperature` to be a number, got str"),
        (True, TypeError, "got bool"),
    ],
)
def test_bad_temperature_raises(loss: object, temperature: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        loss(torch.zeros(1, 2), torch.zeros(1, 2), temperature=temperature)  # type: ignore[operator]
