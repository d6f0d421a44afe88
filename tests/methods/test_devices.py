"""State loaded from a checkpoint (always read onto the CPU) lands on the method's device."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ssdkd.hooks import BNLayerStats
from ssdkd.losses import BNStatMomentum
from ssdkd.methods import REGISTRY, MethodSpec
from ssdkd.methods.common import TransferPool
from tests.methods.tiny import build, tiny_config

META = torch.device("meta")
"""A device without data: moving a tensor there is how a CPU test sees a device move."""


def test_transfer_pool_loads_its_images_onto_its_device() -> None:
    """Prevents resume crashing on CUDA for Fast-DFKD, DeepInversion and the noise control:
    ``TransferPool.load_state_dict`` kept the CPU tensors of the checkpoint, so the next
    ``torch.cat`` with a CUDA batch (or the teacher's forward) failed on a device mismatch."""
    pool = TransferPool(0, SimpleNamespace(device=META))  # type: ignore[arg-type]
    state = {"capacity": 0, "images": torch.rand(3, 1, 2, 2), "labels": torch.arange(3)}
    pool.load_state_dict(state)
    assert pool.images is not None
    assert pool.images.device == META
    assert pool.labels is not None
    assert pool.labels.device == META
    pool.load_state_dict({"capacity": 5, "images": None, "labels": None})
    assert pool.images is None
    assert pool.capacity == 5


def test_bn_momentum_moves_its_moving_average() -> None:
    """Prevents the BN-statistics EMA staying on the CPU after a resume and being copied to
    the device on every inner generator step."""
    loss = BNStatMomentum(momentum=0.9)
    loss.update([BNLayerStats("bn", torch.ones(2), torch.ones(2), torch.zeros(2), torch.ones(2))])
    loss.to(META)
    assert all(t.device == META for t in loss.ema_mean + loss.ema_var)


def _through_a_file(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as a checkpoint gives it back: saved, then loaded onto the CPU."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, map_location="cpu", weights_only=True)
    return loaded


@pytest.mark.cuda
@pytest.mark.parametrize("spec", REGISTRY, ids=[spec.name for spec in REGISTRY])
def test_every_method_resumes_on_cuda(spec: MethodSpec) -> None:
    """The real thing on a GPU: save, load onto the CPU, resume, and keep going."""
    method_class, config = spec.method_class, tiny_config(spec)
    device = torch.device("cuda")
    first = build(method_class, config, device=device)
    first.synthesize(0)
    first.synthesize(1)
    first.distill_step()
    second = build(method_class, config, device=device, seed=5)
    second.load_state_dict(_through_a_file(first.state_dict()))
    second.synthesize(2)
    second.distill_step()
    assert second.synthetic_images().device.type == "cuda"
