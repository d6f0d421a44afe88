"""Hot paths read nothing back to the host; non-finite steps are skipped on the device.

A host read (``.item()``, ``bool(t)``, ``float(t)``, ``.tolist()``) makes the CPU wait for
the GPU. These tests patch the reading methods of ``torch.Tensor`` to raise inside the
code that runs many times per round (see ``tests/syncs.py``); on CUDA the same tests also
run under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ssdkd.methods import REGISTRY, SSDKD, DeepInversion, FastDFKD, MethodSpec
from ssdkd.methods.meta_synthesis import MAX_FAILED_FP16_ROUNDS, MetaGeneratorSynthesis
from ssdkd.methods.precision import Precision
from ssdkd.sampling import PriorityBuffer, _levels
from tests.methods.tiny import build, tiny_config
from tests.syncs import HostReadError, no_host_reads


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        with no_host_reads():
            return function(*args, **kwargs)

    return run


def test_the_guard_catches_the_reads_it_promises_to_catch() -> None:
    """Without this, a guard that patched nothing would let every other test pass."""
    x = torch.ones(2)
    for read in (
        lambda: bool(x.sum()),
        lambda: float(x.sum()),
        lambda: int(x.sum()),
        lambda: x.sum().item(),
        lambda: x.tolist(),
    ):
        with no_host_reads(), pytest.raises(HostReadError):
            read()
    assert x.tolist() == [1.0, 1.0]  # restored afterwards


def test_ssdkd_buffer_device_path_reads_nothing_back(
    tiny_ssdkd_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torch code path of the buffer (what runs on CUDA) inside a KD step, with tree
    levels below a small top row so that the descent and the level updates run too."""
    monkeypatch.setattr(_levels, "TOP_WIDTH", 4)
    method = build(SSDKD, tiny_ssdkd_config)
    method.synthesize(0)
    buffer = method.buffer
    # The same buffer on the device code path, run on CPU tensors.
    method.buffer = PriorityBuffer(
        buffer.capacity,
        alpha=buffer.alpha,
        beta=buffer.beta,
        eps=buffer.eps,
        weight_norm=buffer.weight_norm,
        validate=buffer.validate,
        generator=torch.Generator().manual_seed(0),
        host=False,
    )
    method.buffer.load_state_dict(buffer.state_dict())
    assert method.buffer.ops.name == "torch"
    with no_host_reads():
        method.distill_step()


def test_priority_buffer_sample_and_update_read_nothing_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prevents syncs in ``PriorityBuffer.sample``/``update_priorities`` without validation
    (levels below a small top row, so descents and level updates run)."""
    monkeypatch.setattr(_levels, "TOP_WIDTH", 4)
    for host in (True, False):
        buffer = PriorityBuffer(
            64,
            weight_norm="mean",
            validate=False,
            generator=torch.Generator().manual_seed(0),
            host=host,
        )
        assert buffer.ops.name == ("numpy" if host else "torch")
        buffer.extend(x=torch.arange(64), priorities=torch.rand(64, dtype=torch.float64))
        with no_host_reads():
            for _ in range(3):
                sample = buffer.sample(16)
                buffer.update_priorities(
                    sample.indices, sample.weights.double(), generations=sample.generations
                )
                buffer.extend(x=torch.arange(8))


def test_generator_inner_steps_read_nothing_back(
    tiny_ssdkd_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents a sync per inner generator step (the old ``isfinite`` check, φ's buffer
    histogram with validation); the round reads its metrics once, after the loop."""
    monkeypatch.setattr(
        MetaGeneratorSynthesis,
        "_inner_steps",
        _guarded(MetaGeneratorSynthesis._inner_steps),
    )
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, g_steps=3))
    for round_index in range(3):  # warm-up, then with the adversarial term
        metrics = method.synthesize(round_index)
    assert metrics["synth_skipped_steps"] == 0.0


def test_deepinversion_pixel_steps_read_nothing_back(
    tiny_di_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents two ``float()`` reads per DeepInversion iteration."""
    monkeypatch.setattr(DeepInversion, "_optimize", _guarded(DeepInversion._optimize))
    config = dataclasses.replace(tiny_di_config, competition_weight=0.5)
    metrics = build(DeepInversion, config).synthesize(0)
    assert metrics["synth_skipped_steps"] == 0.0


# ---------------------------------------------------------------- non-finite steps


def test_a_finite_loss_with_an_infinite_gradient_is_not_applied() -> None:
    """Prevents applying a step whose loss is finite but whose gradient is not (√x at 0)."""
    weight = torch.nn.Parameter(torch.tensor([0.0, 1.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    precision = Precision("fp32", torch.device("cpu"))
    assert bool(precision.step((weight - 1.0).pow(2).sum(), optimizer))
    before = weight.detach().clone()
    momentum = optimizer.state[weight]["momentum_buffer"].clone()
    loss = torch.sqrt(weight[:1] - before[:1]).sum()  # 0, with gradient +inf
    assert bool(torch.isfinite(loss))
    assert not bool(precision.step(loss, optimizer))
    assert torch.equal(weight.detach(), before)
    assert torch.equal(optimizer.state[weight]["momentum_buffer"], momentum)
    assert bool(precision.step((weight - 1.0).pow(2).sum(), optimizer))
    assert not torch.equal(weight.detach(), before)


def test_non_finite_inner_steps_are_counted_and_never_kept(
    tiny_fast_config: Any,
) -> None:
    """Prevents silently skipping non-finite inner generator steps: they are counted in
    ``synth_skipped_steps``, and a round whose steps all fail raises."""
    method = build(FastDFKD, dataclasses.replace(tiny_fast_config, g_steps=2))
    method.synthesize(0)
    meta_before = [p.detach().clone() for p in method.synthesis.meta.parameters()]
    with torch.no_grad():
        method.teacher.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="all 2 inner generator steps"):
        method.synthesize(1)
    for before, after in zip(meta_before, method.synthesis.meta.parameters(), strict=True):
        assert torch.equal(before, after)


def test_synthesis_leaves_no_gradient_on_the_student(
    tiny_ssdkd_config: Any, tiny_di_config: Any
) -> None:
    """Prevents the adversarial / competition terms computing (and leaving behind) weight
    gradients of the student: synthesis only needs gradients through it."""
    ssd = build(SSDKD, tiny_ssdkd_config)
    for round_index in range(3):
        ssd.synthesize(round_index)
    di = build(DeepInversion, dataclasses.replace(tiny_di_config, competition_weight=0.5))
    di.synthesize(0)
    for method in (ssd, di):
        assert all(p.grad is None for p in method.student.parameters())
        assert all(p.requires_grad for p in method.student.parameters())


@pytest.mark.cuda
@pytest.mark.parametrize("spec", REGISTRY, ids=[spec.name for spec in REGISTRY])
def test_steps_are_sync_free_on_cuda(spec: MethodSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same checks on a GPU, where ``no_host_reads`` also turns on
    ``torch.cuda.set_sync_debug_mode("error")`` (any synchronisation raises)."""
    method_class, config = spec.method_class, tiny_config(spec)
    monkeypatch.setattr(
        MetaGeneratorSynthesis, "_inner_steps", _guarded(MetaGeneratorSynthesis._inner_steps)
    )
    monkeypatch.setattr(DeepInversion, "_optimize", _guarded(DeepInversion._optimize))
    method = build(method_class, config, device=torch.device("cuda"))
    for round_index in range(3):
        method.synthesize(round_index)
    with no_host_reads():
        for _ in range(3):
            method.distill_step()


def test_a_skipped_first_step_leaves_no_optimizer_state_behind() -> None:
    """Prevents a skipped first step creating SGD's momentum from the weight-decay term:
    the snapshot held only state that existed before the step, so the new momentum
    buffer (wd·w) survived and pushed the next real step."""
    weight = torch.nn.Parameter(torch.tensor([0.0, 1.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9, weight_decay=0.1)
    precision = Precision("fp32", torch.device("cpu"))
    assert not bool(precision.step(torch.sqrt(weight[:1]).sum(), optimizer))  # ∞ gradient
    momentum = optimizer.state[weight].get("momentum_buffer")
    assert momentum is None or torch.equal(momentum, torch.zeros(2))
    assert torch.equal(weight.detach(), torch.tensor([0.0, 1.0]))


def test_an_fp16_loss_that_reaches_no_parameter_does_not_crash() -> None:
    """Prevents ``GradScaler.update`` raising "No inf checks were recorded" when the loss
    has no gradient into the optimiser's parameters."""
    weight = torch.nn.Parameter(torch.ones(2))
    other = torch.ones(1, requires_grad=True)
    precision = Precision("fp16", torch.device("cpu"))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    assert bool(precision.step((other * 2).sum(), optimizer))
    assert torch.equal(weight.detach(), torch.ones(2))


@pytest.mark.filterwarnings("ignore::ssdkd.methods.precision.SlowPrecisionWarning")
def test_fp16_synthesis_tolerates_rounds_while_the_scaler_calibrates(
    tiny_fast_config: Any,
) -> None:
    """Prevents the first fp16 rounds ending the run: the scaler starts at 2¹⁶ and halves
    once per overflowing step, so every inner step of a round may overflow. Such a round
    keeps the generator as it is; only many in a row end the run."""
    method = build(FastDFKD, tiny_fast_config, precision="fp16")
    method.synthesize(0)
    meta_before = [p.detach().clone() for p in method.synthesis.meta.parameters()]
    with torch.no_grad():
        method.teacher.head.bias.fill_(float("nan"))
    for round_index in range(1, MAX_FAILED_FP16_ROUNDS):
        metrics = method.synthesize(round_index)
        assert metrics["synth_skipped_steps"] == tiny_fast_config.g_steps
    for before, after in zip(meta_before, method.synthesis.meta.parameters(), strict=True):
        assert torch.equal(before, after)
    with pytest.raises(FloatingPointError, match=f"{MAX_FAILED_FP16_ROUNDS} consecutive"):
        method.synthesize(MAX_FAILED_FP16_ROUNDS)


def test_a_deepinversion_batch_without_one_finite_step_is_refused(tiny_di_config: Any) -> None:
    """Prevents adding untouched noise to the pool when every pixel step was skipped."""
    method = build(DeepInversion, tiny_di_config)
    with torch.no_grad():
        method.teacher.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="pixel steps of this batch"):
        method.synthesize(0)
    assert len(method.pool) == 0


class _CountOps(TorchDispatchMode):
    """Counts the operators that compute, dispatched inside the block: views and detaches
    (metadata only, no kernel) are left out, and a multi-tensor op counts once."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        returns = func._schema.returns
        view = any(r.alias_info is not None and not r.alias_info.is_write for r in returns)
        if not view and func.__name__.split(".")[0] not in ("detach", "profiler"):
            self.count += 1
        return func(*args, **(kwargs or {}))


def _extra_ops_of_the_guard(layers: int) -> int:
    """Operators ``Precision.step`` dispatches beyond a bare backward and SGD step."""
    counts = []
    for guarded in (False, True):
        torch.manual_seed(0)
        net = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(layers)])
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        precision = Precision("fp32", torch.device("cpu"))
        for _ in range(2):  # the second step: momentum buffers exist
            loss = net(torch.ones(2, 4)).square().mean()
            with _CountOps() as ops:
                if guarded:
                    precision.step(loss, optimizer)
                else:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        counts.append(ops.count)
    return counts[1] - counts[0]


def test_the_guarded_step_costs_the_same_few_kernels_for_any_number_of_tensors() -> None:
    """Prevents a per-parameter loop of small kernels on the hot path: the guard cloned
    every parameter and state tensor and restored each with its own ``torch.where`` (three
    kernels per tensor, hundreds per step for a ResNet)."""
    assert _extra_ops_of_the_guard(2) == _extra_ops_of_the_guard(20)
