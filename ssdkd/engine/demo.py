"""``ssdkd demo``: SSD-KD on scikit-learn digits, with a noise control, in about a minute."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ssdkd.data import load_dataset
from ssdkd.engine.checkpoint import CheckpointError
from ssdkd.engine.distill import distill
from ssdkd.engine.plots import plot_accuracy_vs_time
from ssdkd.engine.runner import RunResult
from ssdkd.engine.teacher import TEACHER_RECIPES, load_teacher, save_teacher, train_teacher
from ssdkd.methods import SSDKD_DIGITS, MethodConfig, noise_control_for
from ssdkd.models import create_model

__all__ = ["DemoReport", "default_cache_dir", "format_report", "run_demo"]

TEACHER_MODEL = "small_cnn"
STUDENT_MODEL = "tiny_cnn"


@dataclass(frozen=True)
class DemoReport:
    """The numbers the demo prints.

    The student accuracies are those of the final round's students on the held-out real
    digits: no round is picked by its accuracy on them.
    """

    teacher_accuracy: float
    student_accuracy: float
    """Final-round held-out accuracy of the SSD-KD student."""
    noise_accuracy: float
    """Final-round held-out accuracy of the noise-control student."""
    images_synthesized: int
    buffer_size: int
    kd_steps: int
    teacher_seconds: float
    ssdkd_seconds: float
    noise_seconds: float
    total_seconds: float
    teacher_cached: bool
    out_dir: Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ssdkd`` (``~/.cache/ssdkd`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ssdkd"


def _teacher(cache_dir: Path, seed: int, progress: bool) -> tuple[nn.Module, float, bool]:
    """Load the cached digits teacher, or train and cache it."""
    dataset = load_dataset("digits")
    path = cache_dir / f"digits-{TEACHER_MODEL}-seed{seed}.pt"
    if path.is_file():
        try:
            model, meta = load_teacher(path)
        except CheckpointError:
            path.unlink()
        else:
            return model, float(meta["accuracy"]), True
    recipe = TEACHER_RECIPES["digits"]
    torch.manual_seed(seed)
    model = create_model(
        TEACHER_MODEL,
        num_classes=dataset.num_classes,
        in_channels=dataset.image_shape[0],
        image_size=dataset.image_shape[1],
    )
    result = train_teacher(
        model,
        dataset,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        weight_decay=recipe.weight_decay,
        schedule=recipe.schedule,
        crop_padding=recipe.crop_padding,
        flip=recipe.flip,
        seed=seed,
        progress=progress,
    )
    save_teacher(
        path,
        result.model,
        model_name=TEACHER_MODEL,
        dataset=dataset,
        accuracy=result.accuracy,
        in_channels=dataset.image_shape[0],
        image_size=dataset.image_shape[1],
    )
    return result.model, result.accuracy, False


def _final_accuracy(result: RunResult) -> float:
    # Both runs get evaluation data, so every round has an accuracy.
    assert result.final_accuracy is not None
    return result.final_accuracy


def run_demo(
    out_dir: str | os.PathLike[str] = "ssdkd-demo",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    rounds: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DemoReport:
    """Train (or reuse) a digits teacher, distil it with SSD-KD, and run the noise control.

    The student (``tiny_cnn``) is distilled with :data:`~ssdkd.methods.SSDKD_DIGITS`; the
    control distils the same student architecture from the same initial weights with the
    same KD budget on uniform-noise images. Both are evaluated on the held-out real digits
    after every round; the report gives the final round's accuracy of each.
    Run directories with metrics, checkpoints and plots go to ``out_dir/ssd-kd`` and
    ``out_dir/noise-control`` (a second demo replaces the runs of the first there);
    ``out_dir/accuracy.png`` compares them.

    Args:
        out_dir: Output directory.
        cache_dir: Where the trained teacher is cached (default :func:`default_cache_dir`).
        rounds: Override the number of SSD-KD rounds (a smaller budget for quick checks).
        seed: Seed of the teacher training and of both distillation runs.
        progress: Show progress bars.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset("digits")
    teacher, teacher_accuracy, cached = _teacher(
        Path(cache_dir) if cache_dir is not None else default_cache_dir(), seed, progress
    )
    teacher_seconds = time.perf_counter() - start
    config = (
        SSDKD_DIGITS
        if rounds is None
        else dataclasses.replace(
            SSDKD_DIGITS, rounds=rounds, warmup_rounds=min(SSDKD_DIGITS.warmup_rounds, rounds - 1)
        )
    )
    control = noise_control_for(config, pool_size=config.buffer_size)

    def student() -> nn.Module:
        return create_model(
            STUDENT_MODEL,
            num_classes=dataset.num_classes,
            in_channels=dataset.image_shape[0],
            image_size=dataset.image_shape[1],
            seed=seed,
        )

    def run(method: str, config: MethodConfig) -> RunResult:
        return distill(
            teacher,
            student(),
            method,
            num_classes=dataset.num_classes,
            image_shape=dataset.image_shape,
            normalization=(dataset.mean, dataset.std),
            config=config,
            eval_data=(dataset.x_test, dataset.y_test),
            seed=seed,
            run_dir=out / method,
            progress=progress,
            # The demo's own directories: running it again replaces its previous runs.
            overwrite=True,
        )

    t0 = time.perf_counter()
    ssd = run("ssd-kd", config)
    t1 = time.perf_counter()
    noise = run("noise-control", control)
    t2 = time.perf_counter()
    with contextlib.suppress(ImportError):  # plots need the optional matplotlib
        plot_accuracy_vs_time(
            {"SSD-KD": ssd.history, "noise control": noise.history}, out / "accuracy.png"
        )
    last = ssd.history[-1]
    return DemoReport(
        teacher_accuracy=teacher_accuracy,
        student_accuracy=_final_accuracy(ssd),
        noise_accuracy=_final_accuracy(noise),
        images_synthesized=int(last["images_synthesized"]),
        buffer_size=config.buffer_size,
        kd_steps=int(last["kd_steps"]),
        teacher_seconds=teacher_seconds,
        ssdkd_seconds=t1 - t0,
        noise_seconds=t2 - t1,
        total_seconds=time.perf_counter() - start,
        teacher_cached=cached,
        out_dir=out,
    )


def format_report(report: DemoReport) -> str:
    """The demo's result table as text."""
    teacher_note = "cached" if report.teacher_cached else "trained"
    rows = [
        ("teacher accuracy (small_cnn, real held-out digits)", f"{report.teacher_accuracy:.2%}"),
        (
            "final-round student accuracy, SSD-KD (tiny_cnn, data-free)",
            f"{report.student_accuracy:.2%}",
        ),
        (
            "final-round student accuracy, noise control (same KD budget)",
            f"{report.noise_accuracy:.2%}",
        ),
        ("synthetic images generated", f"{report.images_synthesized}"),
        ("buffer capacity", f"{report.buffer_size}"),
        ("KD steps", f"{report.kd_steps}"),
        (f"teacher time ({teacher_note})", f"{report.teacher_seconds:.1f} s"),
        ("SSD-KD time (synthesis + KD + evaluation)", f"{report.ssdkd_seconds:.1f} s"),
        ("noise-control time", f"{report.noise_seconds:.1f} s"),
        ("total time", f"{report.total_seconds:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value:>8}" for name, value in rows]
    lines.append(f"outputs: {report.out_dir}")
    return "\n".join(lines)
