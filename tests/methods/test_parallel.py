"""DataParallel in one process, and the checks a multi-process method makes up front.

The multi-process behaviour itself runs under torchrun in tests/engine/test_distributed.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssdkd.methods import SSDKD, FastDFKD
from ssdkd.methods.parallel import DataParallel
from tests.methods.tiny import TINY_FAST, TINY_SSDKD, build


def test_one_process_reductions_return_the_input() -> None:
    one = DataParallel.single()
    x = torch.tensor([1.0, -2.0])
    for reduce in (one.sum, one.min, one.max):
        out = reduce(x)
        assert torch.equal(out, x)
        assert out.data_ptr() != x.data_ptr()  # a copy: callers may write to it
    grads = [torch.tensor([1.0, 2.0])]
    assert bool(one.average_gradients_(grads, torch.tensor(1.0)))
    assert not bool(one.average_gradients_(grads, torch.tensor(float("nan"))))
    assert grads[0].tolist() == [1.0, 2.0]
    assert DataParallel.from_process_group() == one  # no process group here


@pytest.mark.parametrize(("rank", "world"), [(0, 0), (2, 2), (-1, 2), (True, 2)])
def test_bad_rank_or_world_size_is_named(rank: int, world: int) -> None:
    with pytest.raises(ValueError, match=r"Expected `(rank|world_size)`"):
        DataParallel(rank=rank, world_size=world)


def test_shares_must_divide_evenly() -> None:
    assert DataParallel(rank=1, world_size=4).share(128, "kd_batch_size") == 32
    with pytest.raises(ValueError, match=r"`kd_batch_size` to be divisible .* \(3\), got 128"):
        DataParallel(rank=0, world_size=3).share(128, "kd_batch_size")


def test_fp16_with_several_processes_is_refused_before_any_collective() -> None:
    with pytest.raises(ValueError, match="'fp32' or 'bf16' with several processes, got 'fp16'"):
        build(FastDFKD, TINY_FAST, precision="fp16", parallel=DataParallel(rank=0, world_size=2))


def test_a_batch_that_does_not_split_evenly_is_named() -> None:
    config = dataclasses.replace(TINY_FAST, kd_batch_size=15)
    with pytest.raises(ValueError, match="`kd_batch_size` to be divisible"):
        build(FastDFKD, config, parallel=DataParallel(rank=0, world_size=2))


@pytest.mark.parametrize("weight_norm", ["max", "batch", "mean"])
def test_global_weights_in_one_process_are_the_buffers_own(weight_norm: str) -> None:
    """The multi-process weight formula, run on one process, must equal the buffer's."""
    method = build(SSDKD, dataclasses.replace(TINY_SSDKD, weight_norm=weight_norm))
    assert isinstance(method, SSDKD)
    for round_index in range(3):
        method.synthesize(round_index)
    size = len(method.buffer)
    priorities = torch.rand(size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    method.buffer.update_priorities(torch.arange(size), priorities)
    method.buffer.beta = 0.7
    sample = method.buffer.sample(16)
    assert float(sample.weights.std()) > 0
    weights = method.transfer.global_weights(sample.probabilities)
    torch.testing.assert_close(weights, sample.weights.double(), rtol=1e-6, atol=0)
