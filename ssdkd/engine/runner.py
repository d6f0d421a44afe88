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
    module_fingerprint,
)
from ssdkd.engine.collapse import (
    DEFAULT_MAX_TOP_CLASS_SHARE,
    DEFAULT_MIN_CLASS_ENTROPY,
    CollapseWarning,
    check_collapse_thresholds,
    collapse_message,
)
from ssdkd.engine.plots import plot_run
from ssdkd.engine.records import MetricsLog, Progress
from ssdkd.engine.rounds import (
    check_eval_data,
    evaluate,
    mean_over_ranks,
    read_steps,
    summarize_steps,
    summarize_synthesis,
)
from ssdkd.engine.run_state import (
    CHECKPOINT_VERSION,
    agree_on_resume,
    check_same_run,
    claim_run_dir,
    load_run_state,
    most_accurate_round,
    remove_stale_checkpoints,
    repair_best,
    rng_state,
    save_best,
    save_run_state,
    set_rng_state,
)
from ssdkd.engine.student_file import save_student
from ssdkd.methods import DistillationMethod, NonFiniteLossError, config_to_dict

__all__ = ["CHECKPOINT_VERSION", "NonFiniteLossError", "RunResult", "run_rounds"]


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
    eval_every: int = 1,
    checkpoint_every: int = 1,
    overwrite: bool = False,
    min_class_entropy: float = DEFAULT_MIN_CLASS_ENTROPY,
    max_top_class_share: float = DEFAULT_MAX_TOP_CLASS_SHARE,
    extra_config: dict[str, Any] | None = None,
    collapse_hint: str | None = None,
) -> RunResult:
    """Run ``method.config.rounds`` rounds of synthesis and distillation.

    Round r (0-based) runs as ``method.round_plan(r)`` says
    (:class:`~ssdkd.methods.RoundPlan`; by default ``method.synthesize(r)``, then, after
    ``warmup_rounds`` rounds, ``kd_steps`` student steps); then, every ``eval_every``
    rounds, it evaluates the student on ``eval_data`` (real held-out images in [0, 1],
    normalised like the teacher's inputs). The result's student is the final round's;
    the best evaluated round is reported separately and is selected on the evaluation
    data (see :class:`RunResult`). With a ``run_dir`` every round writes a line of
    ``metrics.jsonl`` and TensorBoard scalars, every ``checkpoint_every`` rounds an atomic
    checkpoint (``checkpoints/last.pt``), and a new best evaluated round
    ``checkpoints/best.pt`` (the student of the round most accurate on the evaluation
    data, so selected on it); ``config.json`` holds the resolved config.

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
      ``kl`` (KL(teacher ‖ student)·T², an unbiased estimate of its mean over the
      transfer set, comparable across methods) and, for SSD-KD, ``kl_drawn`` (the plain
      mean over the priority-drawn batches), ``weight_mean`` and ``weight_ess`` (the
      importance weights' normalised effective sample size) — each the mean over the
      round's applied steps; ``beta`` (SSD-KD) is the value after the round's last step;
      ``nonfinite_steps`` counts the skipped steps;
    - the metrics of ``method.synthesize`` (the mean over the round's synthesis calls
      where its plan makes several; loss parts, ``buffer_size``,
      ``synth_class_entropy``, ``data_class_entropy``, ``teacher_confidence``,
      ``target_agreement``, ``phi_mean``, ... as the method reports them); the engine's own
      keys above take precedence over a synthesis metric of the same name;
    - ``warnings``: only in the round that issued the collapse warning, a list holding its
      sentence.

    At the end of a run with a ``run_dir``, ``student.pt`` holds the final student's
    weights with what rebuilds it (:func:`~ssdkd.engine.student_file.load_student`).

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
        collapse_hint: A sentence appended to the collapse warning (the command line
            says there when the config's preset was made for another input size).
        eval_every: Evaluate every this many rounds and after the last one; the other
            rounds record ``None`` for the evaluation's keys.
        checkpoint_every: Write ``last.pt`` every this many rounds and after the last
            one. A resumed run continues from the last checkpoint, so it repeats the
            rounds after it (on the CPU with the same result); ``best.pt`` is written on
            every evaluated round that improves, checkpointed or not.
        overwrite: Replace the run ``run_dir`` holds (its checkpoints, metrics, plots'
            inputs and TensorBoard events are deleted first). Without it, and without
            ``resume``, a ``run_dir`` holding a run is refused.

    Returns:
        A :class:`RunResult`.

    Raises:
        CheckpointError: ``resume`` found a corrupt checkpoint, or one of another config.
        FileExistsError: ``run_dir`` holds a run, without ``resume`` or ``overwrite``.
        NonFiniteLossError: See ``max_nonfinite_steps``.
        TypeError: ``eval_data`` is not a pair of tensors, or a threshold not a number.
        ValueError: ``eval_data`` of mismatched or empty shapes, or a threshold outside
            [0, 1].
    """
    check_eval_data(eval_data)
    for name, every in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Expected `{name}` to be an int >= 1 (rounds), got {every!r}")
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

    if directory is not None:
        claim_run_dir(
            directory, resume=resume, overwrite=overwrite, parallel=parallel, device=method.device
        )
    state = None
    if resume and checkpoints is not None:
        error: CheckpointError | None = None
        try:
            state = load_run_state(checkpoints, parallel)
            if state is not None:
                stored = state["config"]
                defaults = {
                    f.name: f.default
                    for f in dataclasses.fields(cfg)
                    if f.default is not dataclasses.MISSING
                }
                check_same_run(
                    stored,
                    json.loads(json.dumps(config_record)),
                    state["path"],
                    json.loads(json.dumps(defaults)),
                )
        except CheckpointError as exc:
            error = exc
        agree_on_resume(parallel, error, state is not None, method.device)
    if checkpoints is not None:
        remove_stale_checkpoints(checkpoints, parallel)
    if state is not None:
        method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        history = list(state["history"])
        start_round = int(state["round"])
        consecutive_nonfinite = int(state.get("consecutive_nonfinite", 0))
        if best_path is not None and parallel.is_main:
            repair_best(method, history, best_path)

    log: MetricsLog | None = None
    if directory is not None and parallel.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config_record, indent=2) + "\n")
        log = MetricsLog(directory, history)

    best_so_far, _ = most_accurate_round(history)
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
                plan = method.round_plan(round_index)
                synthesis_seconds = kd_seconds = 0.0
                synth_records: list[dict[str, Any]] = []
                raw_steps: list[dict[str, torch.Tensor | float]] = []
                for _ in range(plan.iterations):
                    _sync(method.device)
                    t0 = time.perf_counter()
                    synth_records.append(method.synthesize(round_index))
                    _sync(method.device)
                    t1 = time.perf_counter()
                    raw_steps += [method.distill_step() for _ in range(plan.student_steps)]
                    _sync(method.device)
                    synthesis_seconds += t1 - t0
                    kd_seconds += time.perf_counter() - t1
                steps = read_steps(raw_steps)
                for step in steps:
                    consecutive_nonfinite = consecutive_nonfinite + 1 if step["skipped"] else 0
                    if consecutive_nonfinite >= max_nonfinite_steps:
                        raise NonFiniteLossError(
                            f"{consecutive_nonfinite} consecutive KD steps had a "
                            f"non-finite loss or gradient (round {round_index + 1}); the "
                            "student was not updated by them. Lower the learning rate "
                            "or use fp32/bf16 instead of fp16"
                        )
                overall += synthesis_seconds + kd_seconds
                evaluation: dict[str, float | None] = {
                    "accuracy": None,
                    "eval_top_class_share": None,
                    "eval_class_entropy": None,
                }
                last_round = round_index + 1 == cfg.rounds
                if eval_data is not None and ((round_index + 1) % eval_every == 0 or last_round):
                    evaluation.update(evaluate(method, eval_data))
                accuracy = evaluation["accuracy"]
                improved = accuracy is not None and (best_so_far is None or accuracy > best_so_far)
                if improved:
                    best_so_far = accuracy
                # With several processes: the global count, and the means over the ranks
                # of what each rank measured on its share (one collective each).
                images = mean_over_ranks(
                    parallel,
                    {"images_synthesized": method.images_synthesized},
                    method.device,
                    ("images_synthesized",),
                )
                record: dict[str, Any] = {
                    "round": round_index + 1,
                    "images_synthesized": int(images["images_synthesized"]),
                    "kd_steps": method.kd_steps_done,
                    "synthesis_seconds": synthesis_seconds,
                    "kd_seconds": kd_seconds,
                    "overall_seconds": overall,
                    **evaluation,
                    **mean_over_ranks(parallel, summarize_steps(steps), method.device),
                    "nonfinite_steps": sum(1 for step in steps if step["skipped"]),
                }
                synth_metrics = summarize_synthesis(synth_records)
                for key, value in mean_over_ranks(parallel, synth_metrics, method.device).items():
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
                if message is not None and collapse_hint:
                    message = f"{message} {collapse_hint}"
                if message is not None:
                    record["warnings"] = [message]
                    warned = True
                history.append(record)
                if checkpoints is not None and (
                    (round_index + 1) % checkpoint_every == 0 or last_round
                ):
                    save_run_state(
                        checkpoints,
                        parallel,
                        {
                            "kind": "run",
                            "version": CHECKPOINT_VERSION,
                            "round": round_index + 1,
                            "config": json.loads(json.dumps(config_record)),
                            "method": method.state_dict(),
                            "rng": rng_state(),
                            "history": history,
                            "consecutive_nonfinite": consecutive_nonfinite,
                        },
                    )
                # After last.pt: a crash in between is repaired on resume (_repair_best).
                if improved and best_path is not None and parallel.is_main:
                    save_best(method, round_index + 1, accuracy, best_path)
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
        if history:
            save_student(
                directory / "student.pt",
                method.student,
                round_number=int(history[-1]["round"]),
                accuracy=history[-1]["accuracy"],
                run=config_record,
            )
    best_eval_accuracy, best_round = most_accurate_round(history)
    return RunResult(
        student=method.student,
        final_accuracy=history[-1]["accuracy"] if history else None,
        best_eval_accuracy=best_eval_accuracy,
        best_round=best_round,
        history=history,
        run_dir=directory,
    )
