"""``ssdkd.distill``: one call from a teacher to a distilled student."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch
from torch import nn

from ssdkd.engine.distributed import init_from_environment
from ssdkd.engine.runner import RunResult, run_rounds
from ssdkd.generators import channel_values
from ssdkd.methods import PRECISIONS, MethodConfig, check_config_for, method_spec
from ssdkd.methods.parallel import DataParallel

__all__ = ["distill"]


def distill(
    teacher: nn.Module,
    student: nn.Module,
    method: str = "ssd-kd",
    *,
    num_classes: int,
    image_shape: Sequence[int],
    normalization: tuple[float | Sequence[float], float | Sequence[float]],
    config: MethodConfig | None = None,
    rounds: int | None = None,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    seed: int = 0,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    eval_every: int = 1,
    checkpoint_every: int = 1,
    train_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    overwrite: bool = False,
    collapse_hint: str | None = None,
    student_model: str | None = None,
) -> RunResult:
    """Distil ``teacher`` into ``student`` without data, with one of the reference methods.

    The teacher is put in eval mode and frozen; it must take images normalised with
    ``normalization``, and contain BatchNorm layers for the methods that invert their
    running statistics (all but ``"dafl"``, ``"dfad"``, ``"zskt"``, ``"noise-control"``
    and ``"real-data"``). Synthetic images live in [0, 1].

    Args:
        teacher: A trained classifier, ``(B, C, H, W) → (B, num_classes)``.
        student: The network to train (in place; also returned in the result).
        method: A name of :data:`ssdkd.methods.METHODS` (``"ssd-kd"``, ``"fast-dfkd"``,
            ``"deepinversion"``, ``"noise-control"``, ...).
        num_classes: Number of classes of the teacher.
        image_shape: ``(C, H, W)`` of the teacher's inputs (square images).
        normalization: ``(mean, std)`` per channel used for the teacher's training data;
            a number each for single-channel images (``(0.286, 0.353)``).
        config: The method's config, exactly its config class (default: its ``"paper"``
            preset, see :data:`ssdkd.methods.PRESETS`).
        rounds: Override ``config.rounds`` (must exceed ``config.warmup_rounds``).
        eval_data: Held-out real ``(images in [0, 1], labels)`` to evaluate each round.
        device: Where to run (default: CUDA when available, else CPU).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 scales the KD loss).
        seed: Seeds every random choice of the method (the generator's initial weights,
            latents, targets, sampling, augmentation). It does not initialise ``student``
            (build it with ``create_model(..., seed=)`` for a reproducible run) and leaves
            torch's global random state as the caller had it; a student with dropout
            draws its masks from that global state (a resumed run restores the global
            state its checkpoint saved, so that such a student resumes exactly).
        run_dir: Directory for the config, metrics, checkpoints and plots' inputs.
        resume: Continue the run in ``run_dir`` from its last checkpoint.
        overwrite: Replace the run ``run_dir`` holds; without it (or ``resume``) a
            ``run_dir`` that holds a run is refused, naming it.
        progress: Show a progress bar.
        eval_every: Evaluate on ``eval_data`` every this many rounds and after the last.
        checkpoint_every: Checkpoint every this many rounds and after the last (a resumed
            run repeats the rounds after its last checkpoint).
        train_data: ``(images in [0, 1], labels)`` of the real training set, for the
            methods that learn from it (``"real-data"``, the bound) and only for them.
        collapse_hint: A sentence appended to the collapse warning, if one is issued.
        student_model: The :data:`~ssdkd.models.MODELS` name the student was built with,
            recorded in ``config.json`` and ``student.pt`` so that
            :func:`~ssdkd.engine.student_file.load_student` and ``ssdkd export`` can
            rebuild it (``None``: a network of your own).

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the call joins the process
    group (:func:`~ssdkd.engine.distributed.init_from_environment`; each rank on the GPU
    of its local rank when CUDA is available and ``device`` is not given) and runs data
    parallel: each rank synthesises and distils on its share of every batch, and only
    rank 0 writes logs, plots and the progress bar. Every rank returns the same student.
    See ``docs/concepts/distributed.md``.

    Returns:
        A :class:`~ssdkd.engine.runner.RunResult`: ``student`` (the final round's
        weights), ``final_accuracy`` (the final round's accuracy on ``eval_data``),
        ``best_eval_accuracy``/``best_round`` (selected on ``eval_data``, so not an
        unbiased estimate) and ``history`` (one record per round, see
        :func:`~ssdkd.engine.runner.run_rounds`).

    Raises:
        ValueError: An unknown method or precision; a teacher without BatchNorm layers
            for a method that inverts them; an ``image_shape`` or ``num_classes`` that the
            teacher or the student does not take or return.
        TypeError: A config of another method (the message names both methods).

    Examples:
        >>> import dataclasses, ssdkd
        >>> from ssdkd.methods import SSDKD_DIGITS
        >>> from ssdkd.models import create_model
        >>> teacher = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> student = create_model("tiny_cnn", num_classes=10, in_channels=1, image_size=8)
        >>> config = dataclasses.replace(SSDKD_DIGITS, warmup_rounds=1, kd_steps=5)
        >>> import warnings
        >>> with warnings.catch_warnings():  # an untrained teacher's images collapse
        ...     warnings.simplefilter("ignore", ssdkd.engine.CollapseWarning)
        ...     result = ssdkd.distill(teacher, student, "ssd-kd", num_classes=10,
        ...         image_shape=(1, 8, 8), normalization=((0.3,), (0.4,)), config=config,
        ...         rounds=3, progress=False)
        >>> [(r["round"], r["kd_steps"]) for r in result.history]
        [(1, 0), (2, 5), (3, 10)]
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Expected `precision` to be one of {PRECISIONS}, got {precision!r}")
    spec = check_config_for(method, method_spec(method).default if config is None else config)
    config = spec.default if config is None else config
    options: dict[str, object] = {}
    if spec.method_class.needs_train_data:
        if train_data is None:
            raise ValueError(f"Expected `train_data` (images, labels) for method {method!r}")
        options["train_data"] = train_data
    elif train_data is not None:
        raise ValueError(
            f"Expected no `train_data` for method {method!r}: it is data-free (only "
            "'real-data' learns from real images)"
        )
    if rounds is not None:
        if rounds <= config.warmup_rounds:
            raise ValueError(
                f"Expected `rounds` > the config's warmup_rounds ({config.warmup_rounds}), "
                f"got {rounds}: raise `rounds` or lower the config's `warmup_rounds`"
            )
        config = dataclasses.replace(config, rounds=rounds)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3:
        raise ValueError(f"Expected `image_shape` as (C, H, W), got {tuple(image_shape)}")
    info = init_from_environment()
    if device is not None:
        resolved = torch.device(device)
    elif torch.cuda.is_available():
        resolved = torch.device("cuda", info.local_rank) if info else torch.device("cuda")
    else:
        resolved = torch.device("cpu")
    if not isinstance(normalization, Sequence) or len(normalization) != 2:
        raise TypeError(f"Expected `normalization` as (mean, std), got {normalization!r}")
    mean = channel_values("normalization[0] (mean)", normalization[0])
    std = channel_values("normalization[1] (std)", normalization[1])
    student = student.to(resolved)
    runner = spec.method_class(
        teacher,
        student,
        config,
        num_classes=num_classes,
        image_shape=(shape[0], shape[1], shape[2]),
        normalization=(mean, std),
        precision=precision,
        seed=seed,
        device=resolved,
        parallel=DataParallel.from_process_group() if info is not None else None,
        **options,
    )
    return run_rounds(
        runner,
        eval_data=eval_data,
        run_dir=run_dir,
        resume=resume,
        progress=progress,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        overwrite=overwrite,
        collapse_hint=collapse_hint,
        extra_config={
            "seed": seed,
            "precision": precision,
            "num_classes": num_classes,
            "image_shape": list(shape),
            "mean": list(mean),
            "std": list(std),
            "student_model": student_model,
        },
    )
