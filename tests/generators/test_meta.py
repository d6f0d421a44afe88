"""First-order MAML, Reptile and reinitialize change the meta generator as the math says."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ssdkd.generators import DCGANGenerator, fomaml_accumulate, reinitialize, reptile_gradient


def _linear(seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 2)


def test_fomaml_meta_step_equals_hand_computed_sum_of_inner_gradients() -> None:
    meta = _linear(0)
    fast = copy.deepcopy(meta)
    inner = torch.optim.SGD(fast.parameters(), lr=0.1)
    meta_opt = torch.optim.SGD(meta.parameters(), lr=0.5)
    xs = [torch.randn(4, 3) for _ in range(3)]

    # Hand computation: loss = mean(W x + b)^2-ish, gradients of L = sum((W x + b)**2) / n.
    weight, bias = meta.weight.detach().clone(), meta.bias.detach().clone()
    grad_w_sum, grad_b_sum = torch.zeros_like(weight), torch.zeros_like(bias)
    for x in xs:
        out = x @ weight.T + bias
        # dL/dout = 2 out / n, L = sum(out**2) / n with n = batch size.
        d_out = 2 * out / x.shape[0]
        grad_w, grad_b = d_out.T @ x, d_out.sum(0)
        grad_w_sum += grad_w
        grad_b_sum += grad_b
        weight, bias = weight - 0.1 * grad_w, bias - 0.1 * grad_b
    expected_w = meta.weight.detach() - 0.5 * grad_w_sum
    expected_b = meta.bias.detach() - 0.5 * grad_b_sum

    meta_opt.zero_grad(set_to_none=True)
    for x in xs:
        inner.zero_grad(set_to_none=True)
        (fast(x) ** 2).sum().div(x.shape[0]).backward()
        fomaml_accumulate(meta, fast)
        inner.step()
    meta_opt.step()
    torch.testing.assert_close(meta.weight.detach(), expected_w)
    torch.testing.assert_close(meta.bias.detach(), expected_b)
    # The fast copy followed the inner SGD trajectory of the hand computation.
    torch.testing.assert_close(fast.weight.detach(), weight)


def test_fomaml_adds_to_existing_gradient_and_skips_missing_ones() -> None:
    meta, fast = _linear(0), _linear(1)
    meta.weight.grad = torch.ones_like(meta.weight)
    fast.weight.grad = torch.full_like(fast.weight, 2.0)
    fomaml_accumulate(meta, fast)
    assert torch.equal(meta.weight.grad, torch.full_like(meta.weight, 3.0))
    assert meta.bias.grad is None


def test_reptile_sgd_step_moves_meta_towards_fast_by_lr_times_scale() -> None:
    meta, fast = _linear(0), _linear(1)
    theta, theta_fast = meta.weight.detach().clone(), fast.weight.detach().clone()
    optimizer = torch.optim.SGD(meta.parameters(), lr=0.25)
    reptile_gradient(meta, fast, scale=2.0)
    torch.testing.assert_close(meta.weight.grad, 2.0 * (theta - theta_fast))
    optimizer.step()
    # θ ← θ − η·s·(θ − θ') = θ + 0.5·(θ' − θ): half-way towards the adapted weights.
    torch.testing.assert_close(meta.weight.detach(), theta + 0.5 * (theta_fast - theta))


def test_reptile_overwrites_existing_gradients() -> None:
    meta, fast = _linear(0), _linear(0)
    meta.weight.grad = torch.ones_like(meta.weight)
    reptile_gradient(meta, fast)
    assert torch.equal(meta.weight.grad, torch.zeros_like(meta.weight))


def test_meta_steps_reject_mismatched_modules() -> None:
    with pytest.raises(ValueError, match="same parameters"):
        fomaml_accumulate(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        reptile_gradient(nn.Linear(3, 2), nn.Linear(3, 3))


def test_reinitialize_resets_named_layers_and_bn_statistics_only() -> None:
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    g(torch.randn(4, 8))  # updates BN running statistics
    before = copy.deepcopy(g.state_dict())
    reinitialize(g, ["project", "blocks.0"], generator=torch.Generator().manual_seed(0))
    after = g.state_dict()
    assert not torch.equal(after["project.weight"], before["project.weight"])
    assert torch.equal(after["blocks.0.running_mean"], torch.zeros(8))
    assert torch.equal(after["blocks.0.running_var"], torch.ones(8))
    assert torch.equal(after["blocks.2.weight"], before["blocks.2.weight"])
    assert torch.equal(after["blocks.3.running_mean"], before["blocks.3.running_mean"])


def test_reinitialize_with_generator_is_reproducible_and_keeps_global_rng() -> None:
    a = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    b = copy.deepcopy(a)
    state = torch.random.get_rng_state()
    reinitialize(a, ["project"], generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    reinitialize(b, ["project"], generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.project.weight, b.project.weight)


def test_reinitialize_unknown_name_lists_known_and_changes_nothing() -> None:
    g = DCGANGenerator(latent_dim=8, image_size=8, channels=1, width=4)
    before = copy.deepcopy(g.state_dict())
    with pytest.raises(ValueError, match=r"unknown \['nope'\].*'project'"):
        reinitialize(g, ["project", "nope"])
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())
    with pytest.raises(TypeError, match="string"):
        reinitialize(g, "project")
