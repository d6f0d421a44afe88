"""A process of the ``torchrun`` tests: runs one scenario, writes ``rank<R>.json``.

python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py SCENARIO OUT
    [METHOD RUN_DIR [--resume] [--die-in-round K]]

Scenario ``distill`` runs ``ssdkd.distill`` on tiny 8×8 networks and checks, after every
KD step and every synthesis, that the student (and the meta generator) are bit-identical
on every rank; ``--die-in-round K`` makes rank 1 exit abruptly at the start of round K.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

import ssdkd
import ssdkd.engine.distill as distill_module
from ssdkd.engine.distributed import end_process, init_from_environment, shard_range
from ssdkd.methods import (
    DEEPINVERSION_DIGITS,
    FAST2_DIGITS,
    METHODS,
    REGISTRY,
    SSDKD_DIGITS,
    DistillationMethod,
    noise_control_for,
)
from ssdkd.models import create_model
from ssdkd.sampling import all_reduce_sum, global_class_counts, global_mean_normalized
from tests.methods.tiny import tiny_config

TINY = {
    "fast-dfkd": dataclasses.replace(
        FAST2_DIGITS, rounds=4, warmup_rounds=1, kd_steps=3, kd_batch_size=16,
        synthesis_batch_size=16, generator_width=8, latent_dim=8,
    ),
    "ssd-kd": dataclasses.replace(
        SSDKD_DIGITS, rounds=5, warmup_rounds=1, kd_steps=3, kd_batch_size=16,
        synthesis_batch_size=16, generator_width=8, latent_dim=8, buffer_size=48,
        refresh_policy="lowest-phi",
    ),
    "deepinversion": dataclasses.replace(
        DEEPINVERSION_DIGITS, rounds=3, kd_steps=3, kd_batch_size=16,
        synthesis_batch_size=16, iterations=3,
    ),
}  # fmt: skip
TINY["noise-control"] = noise_control_for(TINY["deepinversion"], pool_size=32)
for _spec in REGISTRY:
    TINY.setdefault(_spec.name, tiny_config(_spec))
"""Every registered method at a budget of a few seconds (the contract tests' tiny config
where no budget is given here); SSD-KD's 48-image buffer (24 per rank) fills after 3
rounds and then refreshes by lowest φ (the refresh policy with a collective inside)."""


def collectives(rank: int, world: int) -> dict[str, object]:
    counts = torch.tensor([rank + 1, 0, 10 * rank])
    weights = torch.arange(1.0, 2.0 + rank)  # rank 0: [1], rank 1: [1, 2]
    start, stop = shard_range(7, rank, world)
    return {
        "counts": global_class_counts(counts).tolist(),
        "weights": global_mean_normalized(weights).tolist(),
        "sum": all_reduce_sum(torch.tensor([float(rank)])).item(),
        "shard": [start, stop],
    }


def dead_rank(rank: int, world: int) -> dict[str, object]:
    dist.barrier()  # every rank is connected: rank 1 now dies mid-job, not during start-up
    if rank == 1:
        return {"left": True}  # leaves without taking part in the collective
    start = time.monotonic()
    try:
        all_reduce_sum(torch.ones(1))
    except Exception as error:  # the collective must fail, not hang
        return {"error": type(error).__name__, "seconds": time.monotonic() - start}
    return {"error": None, "seconds": time.monotonic() - start}


def digest_state(state: Any) -> str:
    """SHA-256 of the tensors and values of a (nested) state dict, bit for bit."""
    sha = hashlib.sha256()

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            sha.update(value.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value):
                sha.update(str(key).encode())
                visit(value[key])
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        else:
            sha.update(repr(value).encode())

    visit(state)
    return sha.hexdigest()


def same_on_every_rank(state: Any) -> bool:
    digests: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest_state(state))
    return len(set(digests)) == 1


def watch(method: DistillationMethod, checks: dict[str, int], die_in_round: int | None) -> None:
    """Check rank equality after each step and synthesis; die where the test asks."""
    distill_step, synthesize = method.distill_step, method.synthesize

    def checked_step() -> dict[str, Any]:
        metrics = distill_step()
        checks["steps"] += 1
        checks["student_differs"] += not same_on_every_rank(method.trainer.state_dict())
        return metrics

    def checked_synthesis(round_index: int) -> dict[str, float]:
        if round_index == die_in_round and dist.get_rank() == 1:
            os._exit(3)  # a crash: no clean-up, no goodbye to the other rank
        metrics = synthesize(round_index)
        checks["syntheses"] += 1
        # The meta generator, its optimiser and the BN-statistics EMA; or the generator
        # family's generator.
        synthesis = getattr(method, "synthesis", None) or getattr(method, "generator", None)
        if synthesis is not None:
            checks["generator_differs"] += not same_on_every_rank(synthesis.state_dict())
            checks["syntheses_with_generator"] += 1
        return metrics

    method.distill_step = checked_step  # type: ignore[method-assign]
    method.synthesize = checked_synthesis  # type: ignore[method-assign]


def distill_run(rank: int, world: int) -> dict[str, object]:
    method_name, run_dir = sys.argv[3], Path(sys.argv[4])
    resume = "--resume" in sys.argv
    die_in_round = (
        int(sys.argv[sys.argv.index("--die-in-round") + 1])
        if "--die-in-round" in sys.argv
        else None
    )
    torch.manual_seed(rank)  # different networks per rank: the method must broadcast rank 0's
    teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
    student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
    eval_gen = torch.Generator().manual_seed(5)
    eval_data = (
        torch.rand(37, 1, 8, 8, generator=eval_gen),
        torch.randint(0, 10, (37,), generator=eval_gen),
    )
    checks = {"steps": 0, "syntheses": 0, "student_differs": 0, "generator_differs": 0}
    checks["syntheses_with_generator"] = 0
    built: list[DistillationMethod] = []
    original_init = DistillationMethod.__init__

    def init(self: DistillationMethod, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        built.append(self)

    DistillationMethod.__init__ = init  # type: ignore[method-assign]
    original_run_rounds = distill_module.run_rounds

    def run_rounds(method: DistillationMethod, **kwargs: Any) -> Any:
        watch(method, checks, die_in_round)
        return original_run_rounds(method, **kwargs)

    distill_module.run_rounds = run_rounds  # type: ignore[assignment]
    train_gen = torch.Generator().manual_seed(6)
    train_data = (
        (
            torch.rand(64, 1, 8, 8, generator=train_gen),
            torch.randint(0, 10, (64,), generator=train_gen),
        )
        if METHODS[method_name].method_class.needs_train_data
        else None
    )
    result = ssdkd.distill(
        teacher, student, method_name, num_classes=10, image_shape=(1, 8, 8),
        normalization=((0.3,), (0.4,)), config=TINY[method_name], eval_data=eval_data,
        train_data=train_data, seed=11, run_dir=run_dir, resume=resume, progress=False,
    )  # fmt: skip
    method = built[0]
    # The engine's split evaluation must equal this rank evaluating the whole set alone.
    from ssdkd.engine.evaluation import evaluate_accuracy

    whole = evaluate_accuracy(
        result.student, *eval_data, normalize=(method.model_input.mean, method.model_input.std)
    )
    buffer = getattr(method, "buffer", None)
    weights = {}
    if buffer is not None:
        # This rank's share of a global batch, and its weights under each normalisation.
        sample = buffer.sample(8)
        weights["beta"] = buffer.beta
        weights["probabilities"] = sample.probabilities.tolist()
        weights["shard_min_probability"] = float(buffer.tree.min / buffer.tree.total)
        for norm in ("max", "batch", "mean"):
            buffer.weight_norm = norm
            weights[norm] = method.transfer.global_weights(sample.probabilities).tolist()
    plans = [method.round_plan(r) for r in range(method.config.rounds)]
    return {
        "weights": weights,
        **checks,
        "planned_steps": sum(plan.iterations * plan.student_steps for plan in plans),
        "planned_syntheses": sum(plan.iterations for plan in plans),
        "student": digest_state(result.student.state_dict()),
        "final_accuracy": result.final_accuracy,
        "whole_set_accuracy": whole,
        "history": [
            {k: v for k, v in record.items() if not k.endswith("_seconds")}
            for record in result.history
        ],
        "buffer_capacity": None if buffer is None else buffer.capacity,
        "buffer_size": None if buffer is None else len(buffer),
        "images": None
        if buffer is None
        else [digest_state(image) for image in buffer.data["images"][: len(buffer)]],
    }


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    warnings.simplefilter("ignore")  # a tiny run's collapse warning is not under test
    info = init_from_environment(backend="gloo", timeout_s=20.0)
    assert info is not None
    result = {"scenario": scenario, "rank": info.rank, "world": info.world_size}
    scenarios = {"collectives": collectives, "dead-rank": dead_rank, "distill": distill_run}
    result |= scenarios[scenario](info.rank, info.world_size)
    (out / f"rank{info.rank}.json").write_text(json.dumps(result))
    if scenario == "dead-rank":
        # The group is broken by design: no barrier can pass; the result is written.
        sys.stdout.flush()
        os._exit(0)
    end_process(0)


if __name__ == "__main__":
    main()
