"""The examples under docs/examples run as documented."""

from __future__ import annotations

import runpy
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def test_deepinversion_loop_with_phi_and_priority_buffer_runs(capsys):
    scope = runpy.run_path(str(EXAMPLES / "deepinversion_plus_ssdkd.py"), run_name="__main__")
    buffer = scope["buffer"]
    assert len(buffer) == 4 * 64
    # Priorities were set from w · KL, so they are no longer the initial 1.0 everywhere.
    assert not torch.all(buffer.priorities() == 1.0)
    assert torch.isfinite(scope["loss"])
    assert capsys.readouterr().out.count("buffer") == 4


def test_the_example_computes_what_ssdkd_computes_on_the_same_batch() -> None:
    """Prevents a user's loop and the reference method computing different things: the
    example used φ's literal reading and buffer-wide weight normalisation while ``SSDKD``
    used the target reading and weights of mean 1. Rebuilds the example's φ and buffer
    calls beside an ``SSDKD`` holding the same buffer contents and compares them."""
    import dataclasses

    from ssdkd.losses import DiversityDifficultyModulator
    from ssdkd.methods import SSDKD
    from ssdkd.sampling import PriorityBuffer
    from tests.methods.tiny import NUM_CLASSES, TINY_SSDKD, build

    config = dataclasses.replace(TINY_SSDKD, priority_sampling=True)
    method = build(SSDKD, config)
    method.synthesize(0)
    stored = {k: v.clone() for k, v in method.buffer.data.items()}
    # The example's objects, with its defaults, fed the same buffer contents.
    phi = DiversityDifficultyModulator(gamma=config.gamma)
    same_draws = torch.Generator().set_state(method.buffer.state_dict()["generator_state"])
    buffer = PriorityBuffer(
        config.buffer_size, alpha=config.alpha, beta=config.beta, generator=same_draws
    )
    buffer.extend(**stored)
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(16, NUM_CLASSES, generator=gen) * 3
    targets = torch.randint(0, NUM_CLASSES, (16,), generator=gen)
    counts = buffer.class_counts("labels", NUM_CLASSES)
    torch.testing.assert_close(
        phi.task_weights(logits, counts, targets), method._task_weights(logits, targets)
    )
    # The same priorities and random stream: the same draws, with the same weights.
    priorities = torch.rand(len(buffer), generator=gen, dtype=torch.float64) ** 4
    slots = torch.arange(len(buffer))
    buffer.update_priorities(slots, priorities)
    method.buffer.update_priorities(slots, priorities)
    ours, theirs = buffer.sample(32), method.buffer.sample(32)
    assert torch.equal(ours.indices, theirs.indices)
    assert torch.equal(ours.weights, theirs.weights)
    assert float(ours.weights.std()) > 0.05  # unequal priorities: the weights differ
