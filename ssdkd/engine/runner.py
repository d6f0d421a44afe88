"""The round loop: synthesis, distillation, evaluation, checkpoint/resume."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.plots import plot_run
from ssdkd.engine.records import MetricsLog, Progress
from ssdkd.methods import DistillationMethod, NonFiniteLossError, config_to_dict

__all__ = ["CHECKPOINT_VERSION", "NonFiniteLossError", "RunResult", "run_rounds"]

CHECKPOINT_VERSION = 1


@dataclass
class RunResult:
    """What a run produced."""

    student: nn.Module
    """The student with the weights of its best evaluated round (the last round's weights
    when no evaluation data was given)."""
    best_accuracy: float | None
    """Best held-out accuracy over the rounds, or ``None`` without evaluation data."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One record per round: ``round``, ``images_synthesized``, ``kd_steps``,
    ``synthesis_seconds``/``kd_seconds`` (this round), ``overall_seconds`` (cumulative
    synthesis + KD time), ``accuracy``, ``kd_loss`` (mean over the round's steps),
    ``nonfinite_steps`` and the synthesis loss parts."""
    run_dir: Path | None = None
    """The run directory, when one was used."""


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sync(device: torch.device) -> None:
    # Honest wall-clock per phase on a GPU needs the queued kernels to finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write_snapshot(method: DistillationMethod, directory: Path, max_images: int = 1000) -> None:
    """Save a sample of the synthetic data with the teacher's logits, then the plots.

    The plots are skipped when matplotlib is not installed; ``ssdkd plot`` redraws them.
    """
    images = method.synthetic_images()
    if images.shape[0] > max_images:
        # An evenly spaced subset keeps old and new entries alike.
        images = images[torch.linspace(0, images.shape[0] - 1, max_images).long()]
    with torch.no_grad(), method.precision.autocast():
        logits = method.teacher(method.model_input(images)).float()
    atomic_save(
        {
            "kind": "synthetic",
            "images": images.cpu(),
            "teacher_logits": logits.cpu(),
            "num_classes": method.num_classes,
        },
        directory / "synthetic.pt",
    )
    try:
        plot_run(directory)
    except ImportError:
        return


def run_rounds(
    method: DistillationMethod,
    *,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    max_nonfinite_steps: int = 20,
    extra_config: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``method.config.rounds`` rounds of synthesis and distillation.

    Round r (0-based) calls ``method.synthesize(r)``; after ``warmup_rounds`` rounds it
    also runs ``kd_steps`` student steps; then it evaluates the student on ``eval_data``
    (real held-out images in [0, 1], normalised like the teacher's inputs) and keeps the
    best student. With a ``run_dir`` every round ends with an atomic checkpoint
    (``checkpoints/last.pt``, and ``checkpoints/best.pt`` on a new best), a line of
    ``metrics.jsonl`` and TensorBoard scalars; ``config.json`` holds the resolved config.

    Args:
        method: A freshly built method (its models, optimisers and generator).
        eval_data: ``(images, labels)`` of held-out real data, or ``None``.
        run_dir: Directory for checkpoints and logs, or ``None`` for none.
        resume: Continue from ``run_dir/checkpoints/last.pt`` if it exists (a fresh run
            otherwise). On the CPU, a resumed run ends bit-identical to an uninterrupted
            one.
        progress: Show a progress bar.
        max_nonfinite_steps: Stop with :class:`NonFiniteLossError` after this many
            consecutive KD steps whose loss was NaN/inf (each such step is skipped and
            counted in ``nonfinite_steps``; the student is never updated by it).
        extra_config: More entries for ``config.json`` (teacher, data, seed...).

    Returns:
        A :class:`RunResult`.

    Raises:
        CheckpointError: ``resume`` found a corrupt checkpoint, or one of another config.
        NonFiniteLossError: See ``max_nonfinite_steps``.
    """
    cfg = method.config
    directory = Path(run_dir) if run_dir is not None else None
    config_record = {"method": type(method).__name__, **config_to_dict(cfg), **(extra_config or {})}
    history: list[dict[str, Any]] = []
    best_accuracy: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    start_round = 0
    last_path = directory / "checkpoints" / "last.pt" if directory else None
    best_path = directory / "checkpoints" / "best.pt" if directory else None

    if resume and last_path is not None and last_path.exists():
        state = load_checkpoint(last_path, kind="run")
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint file {str(last_path)!r} has version {state.get('version')!r}, "
                f"expected {CHECKPOINT_VERSION}"
            )
        if state["config"] != json.loads(json.dumps(config_record)):
            raise CheckpointError(
                f"checkpoint file {str(last_path)!r} belongs to a run with another config; "
                "resume with the same settings or choose a new run directory"
            )
        method.load_state_dict(state["method"])
        _set_rng_state(state["rng"])
        history = list(state["history"])
        best_accuracy = state["best_accuracy"]
        best_state = state["best_student"]
        start_round = int(state["round"])

    log: MetricsLog | None = None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config_record, indent=2) + "\n")
        log = MetricsLog(directory, history)

    overall = history[-1]["overall_seconds"] if history else 0.0
    consecutive_nonfinite = 0
    try:
        with Progress(
            cfg.rounds, initial=start_round, enabled=progress, description=type(method).__name__
        ) as bar:
            for round_index in range(start_round, cfg.rounds):
                _sync(method.device)
                t0 = time.perf_counter()
                synth_metrics = method.synthesize(round_index)
                _sync(method.device)
                t1 = time.perf_counter()
                kd_loss_sum, kd_count, nonfinite = 0.0, 0, 0
                if round_index >= cfg.warmup_rounds:
                    for _ in range(cfg.kd_steps):
                        step = method.distill_step()
                        if step["skipped"]:
                            nonfinite += 1
                            consecutive_nonfinite += 1
                            if consecutive_nonfinite >= max_nonfinite_steps:
                                raise NonFiniteLossError(
                                    f"{consecutive_nonfinite} consecutive KD steps had a "
                                    f"non-finite loss (round {round_index + 1}); the student "
                                    "was not updated by them. Lower the learning rate or use "
                                    "fp32/bf16 instead of fp16"
                                )
                        else:
                            consecutive_nonfinite = 0
                            kd_loss_sum += step["kd_loss"]
                            kd_count += 1
                _sync(method.device)
                t2 = time.perf_counter()
                overall += t2 - t0
                accuracy = None
                if eval_data is not None:
                    accuracy = evaluate_accuracy(
                        method.student,
                        eval_data[0],
                        eval_data[1],
                        device=method.device,
                        normalize=(method.model_input.mean, method.model_input.std),
                    )
                    if best_accuracy is None or accuracy > best_accuracy:
                        best_accuracy = accuracy
                        best_state = copy.deepcopy(method.student.state_dict())
                        if best_path is not None:
                            atomic_save(
                                {
                                    "kind": "student",
                                    "round": round_index + 1,
                                    "accuracy": accuracy,
                                    "state_dict": best_state,
                                },
                                best_path,
                            )
                record: dict[str, Any] = {
                    "round": round_index + 1,
                    "images_synthesized": method.images_synthesized,
                    "kd_steps": method.kd_steps_done,
                    "synthesis_seconds": t1 - t0,
                    "kd_seconds": t2 - t1,
                    "overall_seconds": overall,
                    "accuracy": accuracy,
                    "kd_loss": kd_loss_sum / kd_count if kd_count else None,
                    "nonfinite_steps": nonfinite,
                    **{k: v for k, v in synth_metrics.items() if k != "images_synthesized"},
                }
                history.append(record)
                if last_path is not None:
                    atomic_save(
                        {
                            "kind": "run",
                            "version": CHECKPOINT_VERSION,
                            "round": round_index + 1,
                            "config": json.loads(json.dumps(config_record)),
                            "method": method.state_dict(),
                            "rng": _rng_state(),
                            "history": history,
                            "best_accuracy": best_accuracy,
                            "best_student": best_state,
                        },
                        last_path,
                    )
                if log is not None:
                    log.write(record)
                bar.update(record)
    finally:
        if log is not None:
            log.close()

    if directory is not None:
        _write_snapshot(method, directory)
    if best_state is not None:
        method.student.load_state_dict(best_state)
    return RunResult(
        student=method.student, best_accuracy=best_accuracy, history=history, run_dir=directory
    )
