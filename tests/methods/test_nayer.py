"""NAYER: class-balanced batches from label embeddings through noisy layers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ssdkd.methods import METHODS, NAYER
from ssdkd.methods.nayer import label_embeddings
from ssdkd.models import create_model
from tests.methods.tiny import tiny_config


def _build(channels: int = 1, size: int = 28, **changes: object) -> NAYER:
    config = dataclasses.replace(tiny_config(METHODS["nayer"]), **changes)
    shape = {"num_classes": 10, "in_channels": channels, "image_size": size}
    return NAYER(
        create_model("small_cnn", **shape, seed=0).eval(),
        create_model("tiny_cnn", **shape, seed=1),
        config,
        num_classes=10,
        image_shape=(channels, size, size),
        normalization=((0.5,) * channels, (0.25,) * channels),
        seed=0,
    )


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_a_round_runs_at_28_and_32_pixels(channels: int, size: int) -> None:
    method = _build(channels, size)
    method.synthesize(0)  # a warm-up round: warmup_loops loops, no student step
    assert len(method.pool) == method.config.warmup_loops * method.config.synthesis_batch_size
    assert method.round_plan(0).student_steps == 0
    assert method.round_plan(method.config.warmup_rounds).student_steps > 0
    assert "kd_loss" in method.distill_step()


def test_every_batch_holds_every_class_equally_often() -> None:
    method = _build()
    method.synthesize(0)
    assert method.label_generator is not None
    seen: list[torch.Tensor] = []
    method.label_generator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    method.synthesize(1)
    assert len(seen) == method.config.g_steps * method.config.loops
    per_class = method.config.synthesis_batch_size // 10
    for targets in seen:
        assert torch.equal(torch.bincount(targets, minlength=10), torch.full((10,), per_class))


def test_a_loop_redraws_the_noisy_layers_only_and_g_life_recreates_the_generator() -> None:
    method = _build()
    method.synthesize(0)
    generator = method.label_generator
    assert generator is not None
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    generator.reset_noise(torch.Generator().manual_seed(5))
    after = generator.state_dict()
    for name, value in before.items():
        if not name.startswith("noisy."):
            assert torch.equal(value, after[name]), name  # the rest keeps its weights
        elif name.endswith(".weight"):
            assert not torch.equal(value, after[name]), name  # re-drawn
        else:
            assert not bool(after[name].any()), name  # biases back to 0
    method.synthesize(1)
    assert method.label_generator is generator  # kept within its life (g_life = 2)
    method.synthesize(2)
    assert method.label_generator is not generator  # re-created every g_life rounds


def test_label_embeddings_come_from_a_file_or_are_orthonormal_codes(tmp_path: Path) -> None:
    codes = label_embeddings(10, 16, seed=3)
    torch.testing.assert_close(codes @ codes.T, torch.eye(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(label_embeddings(10, 16, seed=3), codes)
    path = tmp_path / "emb.pt"
    torch.save(torch.randn(10, 7), path)
    method = _build(embeddings_file=str(path))
    assert method.embeddings.shape == (10, 7)
    method.synthesize(0)
    torch.save(torch.randn(9, 7), path)
    with pytest.raises(ValueError, match=r"\(10, D\) floating-point tensor"):
        _build(embeddings_file=str(path))
    with pytest.raises(ValueError, match="`embedding_dim` >= the 10 classes"):
        _build(embedding_dim=4)


def test_a_batch_that_cannot_be_class_balanced_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        _build(synthesis_batch_size=25)
