"""The round loop: synthesis, distillation, evaluation, checkpoint/resume."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssdkd.engine.checkpoint import (
    CheckpointError,
    atomic_save,
    load_checkpoint,
    module_fingerprint,
)
from ssdkd.engine.collapse import (
    DEFAULT_MAX_TOP_CLASS_SHARE,
    DEFAULT_MIN_CLASS_ENTROPY,
    CollapseWarning,
    check_collapse_thresholds,
    collapse_message,
)
from ssdkd.engine.evaluation import evaluate_predictions
from ssdkd.engine.plots import plot_run
from ssdkd.engine.records import MetricsLog, Progress
from ssdkd.methods import DistillationMethod, NonFiniteLossError, config_to_dict
from ssdkd.methods.diagnostics import counts_entropy
from ssdkd.methods.parallel import DataParallel, shard_range

__all__ = ["CHECKPOINT_VERSION", "NonFiniteLossError", "RunResult", "run_rounds"]

CHECKPOINT_VERSION = 3
# Version 1 also stored the best round's student weights and accuracy. A version-1 file
# still resumes: those entries are ignored, the best round is read from the history.
# Version 3 added the count of consecutive skipped KD steps; older files resume with 0.
_READABLE_CHECKPOINT_VERSIONS = (1, 2, CHECKPOINT_VERSION)

_LAST_VALUE_STEP_METRICS = ("beta",)
"""Step metrics recorded as the round's last value instead of the mean over its steps: a
schedule's position, not a quantity measured on each step's batch."""


@dataclass
class RunResult:
    """What a run produced."""

    student: nn.Module
    """The student as the final round left it (never swapped for the weights of a better
    evaluated round)."""
    final_accuracy: float | None
    """Accuracy of the final round's student on the evaluation data: the run's headline
    number. ``None`` without evaluation data."""
    best_eval_accuracy: float | None
    """The highest accuracy of any round on the evaluation data. The round is *selected on
    the evaluation data*, so this is an optimistic number, not an unbiased estimate of the
    student's accuracy on new data; report :attr:`final_accuracy`. ``None`` without
    evaluation data."""
    best_round: int | None
    """The round (1-based, the earliest on ties) of :attr:`best_eval_accuracy`; with a run
    directory its student is in ``checkpoints/best.pt``. ``None`` without evaluation data."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One record per round, as written to ``metrics.jsonl``; see :func:`run_rounds`."""
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


_NETWORKS = {
    "teacher_fingerprint": "another teacher (its weights differ)",
    "student_architecture": "another student architecture",
}


def _check_same_run(
    stored: dict[str, Any], current: dict[str, Any], path: Path, defaults: dict[str, Any]
) -> None:
    """Refuse to resume a checkpoint of another run, naming what differs.

    A config field the checkpoint does not record (one added to the library after it was
    written) counts at its value in ``defaults``, the behaviour the run had.
    """
    stored = {**{k: v for k, v in defaults.items() if k not in stored}, **stored}
    for key, what in _NETWORKS.items():
        # Checkpoints before version 3 hold no fingerprints: nothing to compare.
        if key in stored and stored[key] != current[key]:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} was made with {what}: fingerprint "
                f"{stored[key]} in the checkpoint, {current[key]} now; resume with the same "
                "networks or choose a new run directory"
            )
    comparable = {k: v for k, v in current.items() if k in stored or k not in _NETWORKS}
    if stored != comparable:
        keys = set(stored) | set(comparable)
        differ = sorted(k for k in keys if stored.get(k) != comparable.get(k))
        raise CheckpointError(
            f"checkpoint file {str(path)!r} belongs to a run with another config (differs "
            f"in {', '.join(differ)}); resume with the same settings or choose a new run "
            "directory"
        )


def _save_best(
    method: DistillationMethod, round_number: int, accuracy: float | None, path: Path
) -> None:
    atomic_save(
        {
            "kind": "student",
            "round": round_number,
            "accuracy": accuracy,
            "state_dict": method.student.state_dict(),
        },
        path,
    )


def _repair_best(method: DistillationMethod, history: list[dict[str, Any]], path: Path) -> None:
    """Make ``best.pt`` agree with the resumed history.

    ``last.pt`` is written before ``best.pt``, so a crash between the two leaves a history
    whose best round is the checkpoint's own round and a ``best.pt`` of an earlier one; the
    student just loaded is that round's, so ``best.pt`` is rewritten from it.
    """
    best_accuracy, best_round = _best_round(history)
    if best_round is None or best_round != int(history[-1]["round"]):
        return
    stored = load_checkpoint(path, kind="student") if path.exists() else None
    if stored is None or int(stored["round"]) != best_round:
        _save_best(method, best_round, best_accuracy, path)


def _read_steps(steps: list[dict[str, torch.Tensor | float]]) -> list[dict[str, float]]:
    """The steps' metrics as floats, with every tensor read back in one transfer."""
    tensors = [v for step in steps for v in step.values() if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([t.float() for t in tensors]).tolist() if tensors else [])
    return [
        {k: next(values) if isinstance(v, torch.Tensor) else float(v) for k, v in step.items()}
        for step in steps
    ]


def _summarize_steps(steps: list[dict[str, float]]) -> dict[str, float | None]:
    """One round's KD-step metrics: the mean over the applied (not skipped) steps.

    ``kd_loss`` is always present (``None`` in a round without applied steps); the other
    keys are those the method's steps returned, except ``skipped`` (counted by the caller
    as ``nonfinite_steps``) and the :data:`_LAST_VALUE_STEP_METRICS`, which keep the last
    step's value.
    """
    summary: dict[str, float | None] = {"kd_loss": None}
    applied = [step for step in steps if not step["skipped"]]
    for key in dict.fromkeys(key for step in steps for key in step):
        if key == "skipped":
            continue
        if key in _LAST_VALUE_STEP_METRICS:
            summary[key] = next(step[key] for step in reversed(steps) if key in step)
            continue
        # A skipped step's loss is NaN/inf: it stays out of the round's mean.
        values = [step[key] for step in applied if isinstance(step.get(key), (int, float))]
        summary[key] = sum(values) / len(values) if values else None
    return summary


def _evaluate(
    method: DistillationMethod, eval_data: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, float]:
    """Accuracy and class-coverage diagnostics of the student, from one prediction pass.

    With several processes each rank predicts its :func:`shard_range` share of the images
    and the counts are summed, so every rank gets the numbers of the whole set.
    """
    parallel = method.parallel
    images, labels = eval_data
    start, stop = shard_range(labels.shape[0], parallel.rank, parallel.world_size)
    counts = torch.zeros(method.num_classes + 1, dtype=torch.long, device=method.device)
    if stop > start:
        predictions = evaluate_predictions(
            method.student,
            images[start:stop],
            device=method.device,
            normalize=(method.model_input.mean, method.model_input.std),
        )
        counts[: method.num_classes] = torch.bincount(predictions, minlength=method.num_classes)[
            : method.num_classes
        ]
        counts[-1] = (predictions == labels[start:stop].to(predictions.device)).sum()
    counts = parallel.sum(counts)
    histogram = counts[: method.num_classes].float()
    correct, top_share, entropy = torch.stack(
        [
            counts[-1].float(),
            histogram.max() / histogram.sum().clamp_min(1.0),
            counts_entropy(histogram),
        ]
    ).tolist()
    return {
        "accuracy": int(correct) / labels.shape[0],
        "eval_top_class_share": top_share,
        "eval_class_entropy": entropy,
    }


def _mean_over_ranks(
    parallel: DataParallel,
    values: dict[str, Any],
    device: torch.device,
    sums: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Numeric values averaged over the ranks (those named in ``sums``: summed), in one
    collective; ``None`` where no rank has a number. Other values stay this rank's."""
    if not parallel.active:
        return values
    keys = sorted(k for k, v in values.items() if v is None or isinstance(v, (int, float)))
    present = [isinstance(values[k], (int, float)) for k in keys]
    numbers = [float(values[k]) if ok else 0.0 for k, ok in zip(keys, present, strict=True)]
    reduced = parallel.sum(
        torch.tensor([*numbers, *map(float, present)], dtype=torch.float64, device=device)
    )
    totals, counts = reduced[: len(keys)].tolist(), reduced[len(keys) :].tolist()
    out = dict(values)
    for key, total, count in zip(keys, totals, counts, strict=True):
        out[key] = None if count == 0 else total if key in sums else total / count
    return out


def _best_round(history: list[dict[str, Any]]) -> tuple[float | None, int | None]:
    """``(accuracy, round)`` of the most accurate round so far, the earliest on ties."""
    best: tuple[float | None, int | None] = (None, None)
    for record in history:
        accuracy = record.get("accuracy")
        if accuracy is not None and (best[0] is None or accuracy > best[0]):
            best = (accuracy, int(record["round"]))
    return best


def _check_eval_data(eval_data: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    if eval_data is None:
        return
    if (
        not isinstance(eval_data, tuple)
        or len(eval_data) != 2
        or not all(isinstance(part, torch.Tensor) for part in eval_data)
    ):
        raise TypeError(
            f"Expected `eval_data` to be a tuple (images, labels) of tensors, got {eval_data!r}"
        )
    images, labels = eval_data
    if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            "Expected `eval_data` as images (N, C, H, W) and labels (N,), got shapes "
            f"{tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if labels.shape[0] == 0:
        raise ValueError("Expected `eval_data` with at least one image, got none")


_MANIFEST = "manifest.pt"
"""With several processes: the file naming the round and every rank's checkpoint file."""


def _rank_file(rank: int, world_size: int, round_number: int) -> str:
    return f"last-rank{rank}-of-{world_size}-round{round_number}.pt"


def _world_size_error(path: Path, stored: int, current: int) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {str(path)!r} was written by a run on {stored} process(es), and this "
        f"run has {current}; resume with {stored} process(es) (a sharded buffer cannot be "
        "split differently without changing which items each rank draws) or choose a new "
        "run directory"
    )


def _load_run_state(checkpoints: Path, parallel: DataParallel) -> dict[str, Any] | None:
    """This rank's last complete checkpoint (``None`` if there is none), checked.

    One process reads ``last.pt``; several read the manifest and their own file of the
    round it names. A checkpoint of another number of processes is refused.
    """
    last, manifest = checkpoints / "last.pt", checkpoints / _MANIFEST
    if not parallel.active:
        if manifest.exists() and not last.exists():
            stored = load_checkpoint(manifest, kind="manifest")
            raise _world_size_error(manifest, int(stored["world_size"]), 1)
        if not last.exists():
            return None
        path = last
        state = load_checkpoint(path, kind="run")
    else:
        if last.exists():
            raise _world_size_error(last, 1, parallel.world_size)
        if not manifest.exists():
            return None
        stored = load_checkpoint(manifest, kind="manifest")
        if int(stored["world_size"]) != parallel.world_size:
            raise _world_size_error(manifest, int(stored["world_size"]), parallel.world_size)
        path = checkpoints / str(stored["files"][parallel.rank])
        state = load_checkpoint(path, kind="run")
        if int(state["round"]) != int(stored["round"]) or state.get("rank") != parallel.rank:
            raise CheckpointError(
                f"checkpoint file {str(path)!r} holds round {state['round']} of rank "
                f"{state.get('rank')}, but {str(manifest)!r} names round {stored['round']} "
                f"of rank {parallel.rank}"
            )
    if state.get("version") not in _READABLE_CHECKPOINT_VERSIONS:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} has version {state.get('version')!r}, "
            f"expected one of {_READABLE_CHECKPOINT_VERSIONS}"
        )
    return {**state, "path": path}


def _agree_on_resume(
    parallel: DataParallel, error: CheckpointError | None, resuming: bool, device: torch.device
) -> None:
    """Raise on every rank if any rank could not resume, or if they disagree on resuming."""
    if not parallel.active:
        if error is not None:
            raise error
        return
    flags = parallel.sum(
        torch.tensor([int(error is not None), int(resuming)], dtype=torch.long, device=device)
    )
    failed, found = (int(v) for v in flags.tolist())
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"{failed} other process(es) could not resume; see their error")
    if 0 < found < parallel.world_size:
        raise CheckpointError(
            f"{found} of {parallel.world_size} processes found a checkpoint to resume from "
            "and the others did not: the run directory must be on a file system that every "
            "process shares"
        )


def _remove_stale_checkpoints(checkpoints: Path, parallel: DataParallel) -> None:
    """Delete checkpoint files this run can never resume from (rank 0, then a barrier).

    Those of the other layout (``last.pt`` under several processes; the manifest and the
    rank files under one), rank files the manifest does not name (another world size, or
    a crash before the manifest), and temporary files a crash left mid-write.
    """
    if parallel.is_main and checkpoints.is_dir():
        manifest = checkpoints / _MANIFEST
        keep: set[str] = set()
        if parallel.active:
            (checkpoints / "last.pt").unlink(missing_ok=True)
            if manifest.exists():
                keep = {str(name) for name in load_checkpoint(manifest, kind="manifest")["files"]}
        else:
            manifest.unlink(missing_ok=True)
        for path in [*checkpoints.glob("last-rank*-of-*.pt"), *checkpoints.glob(".*.tmp")]:
            if path.name not in keep:
                path.unlink(missing_ok=True)
    parallel.barrier()


def _save_run_state(checkpoints: Path, parallel: DataParallel, state: dict[str, Any]) -> None:
    """Write the round's checkpoint atomically.

    One process writes ``last.pt``. Several write one file per rank and round; once every
    rank's file is in place, rank 0 replaces the manifest (the commit point: a crash
    before it leaves the previous manifest, whose files are still there), and then each
    rank deletes its files of earlier rounds.
    """
    if not parallel.active:
        atomic_save(state, checkpoints / "last.pt")
        return
    round_number, world = int(state["round"]), parallel.world_size
    name = _rank_file(parallel.rank, world, round_number)
    atomic_save({**state, "rank": parallel.rank, "world_size": world}, checkpoints / name)
    parallel.barrier()
    if parallel.is_main:
        atomic_save(
            {
                "kind": "manifest",
                "round": round_number,
                "world_size": world,
                "files": [_rank_file(r, world, round_number) for r in range(world)],
            },
            checkpoints / _MANIFEST,
        )
    parallel.barrier()
    for old in checkpoints.glob(f"last-rank{parallel.rank}-of-{world}-round*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)


def run_rounds(
    method: DistillationMethod,
    *,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    max_nonfinite_steps: int = 20,
    min_class_entropy: float = DEFAULT_MIN_CLASS_ENTROPY,
    max_top_class_share: float = DEFAULT_MAX_TOP_CLASS_SHARE,
    extra_config: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``method.config.rounds`` rounds of synthesis and distillation.

    Round r (0-based) calls ``method.synthesize(r)``; after ``warmup_rounds`` rounds it
    also runs ``kd_steps`` student steps; then it evaluates the student on ``eval_data``
    (real held-out images in [0, 1], normalised like the teacher's inputs). The result's
    student is the final round's; the best evaluated round is reported separately and is
    selected on the evaluation data (see :class:`RunResult`). With a ``run_dir`` every
    round ends with an atomic checkpoint (``checkpoints/last.pt``, and
    ``checkpoints/best.pt`` — the student of the round most accurate on the evaluation
    data, so selected on it — on a new best), a line of ``metrics.jsonl`` and TensorBoard
    scalars; ``config.json`` holds the resolved config.

    Each round's record (a line of ``metrics.jsonl``, an item of ``RunResult.history``)
    holds:

    - ``round`` (1-based), ``images_synthesized`` and ``kd_steps`` (cumulative),
      ``synthesis_seconds`` and ``kd_seconds`` (this round), ``overall_seconds``
      (cumulative synthesis + KD time; evaluation is not counted);
    - from the evaluation, ``None`` without ``eval_data``: ``accuracy``,
      ``eval_top_class_share`` (share of the evaluation images given the student's most
      frequent predicted class, in [1/K, 1]) and ``eval_class_entropy`` (normalised
      entropy of the student's predicted classes, in [0, 1]);
    - from the KD steps: ``kd_loss`` (``None`` in a round without applied steps) and
      every other numeric metric the method's steps return — for the reference methods
      ``kl`` (unweighted KL(teacher ‖ student)·T², comparable across methods) and, for
      SSD-KD, ``weight_mean`` and ``weight_ess`` (the importance weights' normalised
      effective sample size) — each the mean over the round's applied steps; ``beta``
      (SSD-KD) is the value after the round's last step; ``nonfinite_steps`` counts the
      skipped steps;
    - the metrics of ``method.synthesize`` (loss parts, ``buffer_size``,
      ``synth_class_entropy``, ``data_class_entropy``, ``teacher_confidence``,
      ``target_agreement``, ``phi_mean``, ... as the method reports them); the engine's own
      keys above take precedence over a synthesis metric of the same name;
    - ``warnings``: only in the round that issued the collapse warning, a list holding its
      sentence.

    **Collapse warning.** From the end of the second round with KD steps on, a round whose
    record shows mode collapse — ``data_class_entropy`` (``synth_class_entropy`` when
    the method reports no ``data_class_entropy``) ``< min_class_entropy``, or
    ``eval_top_class_share >= max_top_class_share`` — issues a
    :class:`~ssdkd.engine.CollapseWarning` (and, with ``progress``, prints the same
    sentence on stderr); see :func:`~ssdkd.engine.collapse.collapse_message`. The first
    KD round is left out because a student that has just started learning often predicts
    one class. A run warns at most once: a run resumed from a history that holds a
    ``warnings`` entry does not warn again, in this process or a new one. The warning is
    issued after the round is checkpointed and logged, so turning it into an error
    (``warnings.simplefilter("error", CollapseWarning)``) stops a run that can resume.

    Args:
        method: A freshly built method (its models, optimisers and generator).
        eval_data: ``(images (N, C, H, W), labels (N,))`` of held-out real data, or
            ``None``.
        run_dir: Directory for checkpoints and logs, or ``None`` for none.
        resume: Continue from ``run_dir/checkpoints/last.pt`` if it exists (a fresh run
            otherwise). On the CPU, a resumed run ends bit-identical to an uninterrupted
            one.
        progress: Show a progress bar.
        max_nonfinite_steps: Stop with :class:`NonFiniteLossError` after this many
            consecutive KD steps whose loss or gradients were NaN/inf (each such step is
            skipped and counted in ``nonfinite_steps``; the student is never updated by
            it). The count runs across rounds and resumes, and is checked at the end of
            each round, when the round's step metrics are read back.
        min_class_entropy: Warn when the synthetic data's normalised class entropy falls
            below this, in [0, 1] (0 turns this sign off).
        max_top_class_share: Warn when the student gives one class to at least this
            share of the evaluation images, in [0, 1].
        extra_config: More entries for ``config.json`` (teacher, data, seed...).

    Returns:
        A :class:`RunResult`.

    Raises:
        CheckpointError: ``resume`` found a corrupt checkpoint, or one of another config.
        NonFiniteLossError: See ``max_nonfinite_steps``.
        TypeError: ``eval_data`` is not a pair of tensors, or a threshold not a number.
        ValueError: ``eval_data`` of mismatched or empty shapes, or a threshold outside
            [0, 1].
    """
    _check_eval_data(eval_data)
    check_collapse_thresholds(min_class_entropy, max_top_class_share)
    cfg = method.config
    directory = Path(run_dir) if run_dir is not None else None
    config_record = {
        "method": type(method).__name__,
        **config_to_dict(cfg),
        **(extra_config or {}),
        "teacher_fingerprint": module_fingerprint(method.teacher, weights=True),
        "student_architecture": module_fingerprint(method.student, weights=False),
    }
    parallel = method.parallel
    history: list[dict[str, Any]] = []
    start_round = 0
    consecutive_nonfinite = 0
    checkpoints = directory / "checkpoints" if directory else None
    best_path = checkpoints / "best.pt" if checkpoints else None

    state = None
    if resume and checkpoints is not None:
        error: CheckpointError | None = None
        try:
            state = _load_run_state(checkpoints, parallel)
            if state is not None:
                stored = state["config"]
                defaults = {
                    f.name: f.default
                    for f in dataclasses.fields(cfg)
                    if f.default is not dataclasses.MISSING
                }
                _check_same_run(
                    stored,
                    json.loads(json.dumps(config_record)),
                    state["path"],
                    json.loads(json.dumps(defaults)),
                )
        except CheckpointError as exc:
            error = exc
        _agree_on_resume(parallel, error, state is not None, method.device)
    if checkpoints is not None:
        _remove_stale_checkpoints(checkpoints, parallel)
    if state is not None:
        method.load_state_dict(state["method"])
        _set_rng_state(state["rng"])
        history = list(state["history"])
        start_round = int(state["round"])
        consecutive_nonfinite = int(state.get("consecutive_nonfinite", 0))
        if best_path is not None and parallel.is_main:
            _repair_best(method, history, best_path)

    log: MetricsLog | None = None
    if directory is not None and parallel.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config_record, indent=2) + "\n")
        log = MetricsLog(directory, history)

    best_so_far, _ = _best_round(history)
    warned = any(record.get("warnings") for record in history)
    overall = history[-1]["overall_seconds"] if history else 0.0
    try:
        with Progress(
            cfg.rounds,
            initial=start_round,
            enabled=progress and parallel.is_main,
            description=type(method).__name__,
        ) as bar:
            for round_index in range(start_round, cfg.rounds):
                _sync(method.device)
                t0 = time.perf_counter()
                synth_metrics = method.synthesize(round_index)
                _sync(method.device)
                t1 = time.perf_counter()
                steps: list[dict[str, float]] = []
                if round_index >= cfg.warmup_rounds:
                    steps = _read_steps([method.distill_step() for _ in range(cfg.kd_steps)])
                    for step in steps:
                        consecutive_nonfinite = consecutive_nonfinite + 1 if step["skipped"] else 0
                        if consecutive_nonfinite >= max_nonfinite_steps:
                            raise NonFiniteLossError(
                                f"{consecutive_nonfinite} consecutive KD steps had a "
                                f"non-finite loss or gradient (round {round_index + 1}); the "
                                "student was not updated by them. Lower the learning rate "
                                "or use fp32/bf16 instead of fp16"
                            )
                _sync(method.device)
                t2 = time.perf_counter()
                overall += t2 - t0
                evaluation: dict[str, float | None] = {
                    "accuracy": None,
                    "eval_top_class_share": None,
                    "eval_class_entropy": None,
                }
                if eval_data is not None:
                    evaluation.update(_evaluate(method, eval_data))
                accuracy = evaluation["accuracy"]
                improved = accuracy is not None and (best_so_far is None or accuracy > best_so_far)
                if improved:
                    best_so_far = accuracy
                # With several processes: the global count, and the means over the ranks
                # of what each rank measured on its share (one collective each).
                images = _mean_over_ranks(
                    parallel,
                    {"images_synthesized": method.images_synthesized},
                    method.device,
                    ("images_synthesized",),
                )
                record: dict[str, Any] = {
                    "round": round_index + 1,
                    "images_synthesized": int(images["images_synthesized"]),
                    "kd_steps": method.kd_steps_done,
                    "synthesis_seconds": t1 - t0,
                    "kd_seconds": t2 - t1,
                    "overall_seconds": overall,
                    **evaluation,
                    **_mean_over_ranks(parallel, _summarize_steps(steps), method.device),
                    "nonfinite_steps": sum(1 for step in steps if step["skipped"]),
                }
                for key, value in _mean_over_ranks(parallel, synth_metrics, method.device).items():
                    # The engine's count of images_synthesized is authoritative.
                    record.setdefault(key, value)
                message = None
                # Rounds up to the first KD round are noisy: see the docstring.
                if not warned and round_index >= cfg.warmup_rounds + 1:
                    message = collapse_message(
                        record,
                        min_class_entropy=min_class_entropy,
                        max_top_class_share=max_top_class_share,
                    )
                if message is not None:
                    record["warnings"] = [message]
                    warned = True
                history.append(record)
                if checkpoints is not None:
                    _save_run_state(
                        checkpoints,
                        parallel,
                        {
                            "kind": "run",
                            "version": CHECKPOINT_VERSION,
                            "round": round_index + 1,
                            "config": json.loads(json.dumps(config_record)),
                            "method": method.state_dict(),
                            "rng": _rng_state(),
                            "history": history,
                            "consecutive_nonfinite": consecutive_nonfinite,
                        },
                    )
                # After last.pt: a crash in between is repaired on resume (_repair_best).
                if improved and best_path is not None and parallel.is_main:
                    _save_best(method, round_index + 1, accuracy, best_path)
                if log is not None:
                    log.write(record)
                bar.update(record)
                if message is not None and parallel.is_main:
                    bar.warn(message, CollapseWarning, stacklevel=2)
                elif message is not None:
                    # The other ranks honour the warning filters too (a filter that makes
                    # it an error stops every rank, not rank 0 alone) but print nothing.
                    with warnings.catch_warnings(record=True):
                        warnings.warn(message, CollapseWarning, stacklevel=2)
    finally:
        if log is not None:
            log.close()

    if directory is not None and parallel.is_main:
        _write_snapshot(method, directory)
    best_eval_accuracy, best_round = _best_round(history)
    return RunResult(
        student=method.student,
        final_accuracy=history[-1]["accuracy"] if history else None,
        best_eval_accuracy=best_eval_accuracy,
        best_round=best_round,
        history=history,
        run_dir=directory,
    )
