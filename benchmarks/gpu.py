"""GPU check: ssdkd's steps against bare PyTorch, host-sync freedom, and the CUDA tests.

One script, one JSON (``--out``), for a machine with a GPU:

- **KD step**: resnet34 → resnet18, 3×32×32, batch 256, random weights. ssdkd's
  ``SSDKD.distill_step()`` (priority draw, teacher and student forward, weighted KD loss,
  guarded SGD step, priority update) against a bare step (``torch.randint`` draw, the same
  networks, ``F.kl_div``, plain SGD). KD augmentation off, so both do the same tensor
  work.
- **Synthesis step**: one inner generator step of Fast-DFKD/SSD-KD (DCGAN generator, BN
  statistics of every teacher BN layer, cross-entropy, backward, Adam) through
  ``MetaGeneratorSynthesis`` against the same math written with plain forward hooks.
- Both in fp32 and in bf16 autocast with channels_last networks. The two sides alternate
  in blocks of steps, each block timed between two ``torch.cuda.synchronize()``; the
  report is the median per-step time of each side and the median of the per-block ratios.
  Target: ssdkd ≤ 1.05× bare.
- **PriorityBuffer** ``sample`` + ``update_priorities`` at N = 5,000 and 1,000,000 under
  ``torch.cuda.set_sync_debug_mode("error")`` (validation off): any host sync raises.
- ``pytest -m cuda`` (skipped with ``--quick``).

    python benchmarks/gpu.py                                  # on the GPU machine
    python benchmarks/gpu.py --device cpu --quick --out /tmp/gpu.json   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import command_line, machine_info
from torch import nn

from ssdkd.generators import DCGANGenerator
from ssdkd.methods import SSDKDConfig
from ssdkd.methods.meta_synthesis import MetaGeneratorSynthesis
from ssdkd.methods.ssd_kd import SSDKD
from ssdkd.models import create_model
from ssdkd.sampling import PriorityBuffer

ROOT = Path(__file__).resolve().parent.parent
MEAN, STD = 0.5, 0.25


@dataclasses.dataclass(frozen=True)
class Setup:
    """Sizes of one run (the full check or the CPU smoke run)."""

    teacher: str
    student: str
    size: int
    batch: int
    buffer: int
    blocks: int
    steps_per_block: int
    buffer_sizes: tuple[int, ...]


FULL = Setup("resnet34", "resnet18", 32, 256, 5000, 15, 10, (5000, 1_000_000))
QUICK = Setup("resnet34", "resnet18", 32, 8, 64, 2, 1, (1000,))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _autocast(device: torch.device, precision: str) -> Iterator[None]:
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


def _networks(setup: Setup, device: torch.device, precision: str) -> tuple[nn.Module, nn.Module]:
    kwargs = {"num_classes": 10, "in_channels": 3, "image_size": setup.size}
    teacher = create_model(setup.teacher, **kwargs).eval().to(device)
    student = create_model(setup.student, **kwargs).to(device)
    if precision == "bf16":
        teacher = teacher.to(memory_format=torch.channels_last)
        student = student.to(memory_format=torch.channels_last)
    return teacher, student


def _ssdkd(
    teacher: nn.Module,
    student: nn.Module,
    config: SSDKDConfig,
    setup: Setup,
    device: torch.device,
    precision: str,
) -> SSDKD:
    return SSDKD(
        teacher,
        student,
        config,
        num_classes=10,
        image_shape=(3, setup.size, setup.size),
        normalization=((MEAN,) * 3, (STD,) * 3),
        precision=precision,
        device=device,
    )


def _alternate(
    ssdkd_step: Callable[[], Any], bare_step: Callable[[], Any], setup: Setup, device: torch.device
) -> dict[str, Any]:
    """Time blocks of steps of each side, alternating which goes first."""
    for _ in range(2):  # warm-up: kernels, autotuning, allocator
        ssdkd_step()
        bare_step()
    _sync(device)
    times: dict[str, list[float]] = {"ssdkd": [], "bare": []}
    ratios = []
    for block in range(setup.blocks):
        order = ("ssdkd", "bare") if block % 2 == 0 else ("bare", "ssdkd")
        elapsed: dict[str, float] = {}
        for side in order:
            step = ssdkd_step if side == "ssdkd" else bare_step
            _sync(device)
            start = time.perf_counter()
            for _ in range(setup.steps_per_block):
                step()
            _sync(device)
            elapsed[side] = (time.perf_counter() - start) / setup.steps_per_block
        for side, seconds in elapsed.items():
            times[side].append(seconds)
        ratios.append(elapsed["ssdkd"] / elapsed["bare"])
    ratio = statistics.median(ratios)
    return {
        "ssdkd_ms_median": 1000 * statistics.median(times["ssdkd"]),
        "bare_ms_median": 1000 * statistics.median(times["bare"]),
        "ratio_median": ratio,
        "within_5_percent": ratio <= 1.05,
        "ratios": ratios,
    }


# ---------------------------------------------------------------- KD step


def kd_step(setup: Setup, device: torch.device, precision: str) -> dict[str, Any]:
    teacher, student = _networks(setup, device, precision)
    bare_student = copy.deepcopy(student)
    config = dataclasses.replace(
        SSDKDConfig(),
        kd_batch_size=setup.batch,
        synthesis_batch_size=setup.batch,
        buffer_size=setup.buffer,
        kd_augment=False,
        rounds=2,
        warmup_rounds=1,
        kd_steps=10**6,
        temperature=4.0,
    )
    method = _ssdkd(teacher, student, config, setup, device, precision)
    images = torch.rand(setup.buffer, 3, setup.size, setup.size, device=device)
    logits = torch.randn(setup.buffer, 10, device=device)
    method.buffer.extend(images=images, labels=logits.argmax(dim=1), teacher_logits=logits)
    pool = images.clone()
    optimizer = torch.optim.SGD(bare_student.parameters(), lr=config.student_lr, momentum=0.9)
    temperature = config.temperature

    def bare() -> None:
        index = torch.randint(0, pool.shape[0], (setup.batch,), device=device)
        x = (pool[index] - MEAN) / STD
        bare_student.train()
        with _autocast(device, precision):
            with torch.no_grad():
                t = teacher(x)
            s = bare_student(x)
        loss = F.kl_div(
            F.log_softmax(s.float() / temperature, dim=1),
            F.softmax(t.float() / temperature, dim=1),
            reduction="batchmean",
        ) * (temperature**2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _alternate(method.distill_step, bare, setup, device)


# ---------------------------------------------------------------- synthesis step


def synthesis_step(setup: Setup, device: torch.device, precision: str) -> dict[str, Any]:
    """One Fast-DFKD generator round (2 inner steps, meta step, EMA update, final teacher
    pass) through ``MetaGeneratorSynthesis`` against the same round in plain PyTorch."""
    teacher, student = _networks(setup, device, precision)
    config = dataclasses.replace(
        SSDKDConfig(), synthesis_batch_size=setup.batch, crop_padding=0, flip=False
    )
    method = _ssdkd(teacher, student, config, setup, device, precision)
    synthesis: MetaGeneratorSynthesis = method.synthesis
    meta = DCGANGenerator(latent_dim=config.latent_dim, image_size=setup.size).to(device)
    meta_optimizer = torch.optim.Adam(
        meta.parameters(), lr=config.lr_g * config.g_steps, betas=(0.5, 0.999)
    )
    layers = [m for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    batch_stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    ema: list[tuple[torch.Tensor, torch.Tensor]] = []
    m = config.bn_momentum

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
        x = inputs[0].float()
        batch_stats.append((x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)))

    handles = [layer.register_forward_hook(hook) for layer in layers]

    def bn_loss() -> torch.Tensor:
        total = torch.zeros((), device=device)
        for i, (layer, (mean, var)) in enumerate(zip(layers, batch_stats, strict=True)):
            if ema:
                mean = (1 - m) * mean + m * ema[i][0]
                var = (1 - m) * var + m * ema[i][1]
            assert isinstance(layer.running_mean, torch.Tensor)
            assert isinstance(layer.running_var, torch.Tensor)
            total = total + torch.norm(mean - layer.running_mean, 2)
            total = total + torch.norm(var - layer.running_var, 2)
        return total

    def bare() -> None:
        fast = copy.deepcopy(meta)
        z = torch.randn(setup.batch, config.latent_dim, device=device, requires_grad=True)
        targets = torch.randint(0, 10, (setup.batch,), device=device)
        inner = torch.optim.Adam(
            [{"params": fast.parameters(), "lr": config.lr_g}, {"params": [z], "lr": config.lr_z}],
            betas=(0.5, 0.999),
        )
        meta_optimizer.zero_grad(set_to_none=True)
        for _ in range(config.g_steps):
            batch_stats.clear()
            images = fast(z)
            with _autocast(device, precision):
                logits = teacher((images - MEAN) / STD).float()
            loss = config.bn_weight * bn_loss() + config.oh_weight * F.cross_entropy(
                logits, targets
            )
            inner.zero_grad(set_to_none=True)
            loss.backward()
            for meta_param, fast_param in zip(meta.parameters(), fast.parameters(), strict=True):
                assert fast_param.grad is not None
                if meta_param.grad is None:
                    meta_param.grad = fast_param.grad.clone()
                else:
                    meta_param.grad.add_(fast_param.grad)
            inner.step()
        meta_optimizer.step()
        last = [(mean.detach(), var.detach()) for mean, var in batch_stats]
        if ema:
            ema[:] = [
                (m * e_mean + (1 - m) * mean, m * e_var + (1 - m) * var)
                for (e_mean, e_var), (mean, var) in zip(ema, last, strict=True)
            ]
        else:
            ema.extend(last)
        with torch.no_grad(), _autocast(device, precision):
            teacher((images.detach() - MEAN) / STD)

    def ours() -> None:
        synthesis.run(adversarial=False)

    try:
        return _alternate(ours, bare, setup, device)
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------- buffer


def buffer_syncs(size: int, batch: int, device: torch.device, steps: int) -> dict[str, Any]:
    buffer = PriorityBuffer(
        size,
        device=device,
        weight_norm="mean",
        validate=False,
        generator=torch.Generator(device=device).manual_seed(0),
    )
    buffer.extend(
        x=torch.arange(size, device=device),
        priorities=torch.rand(size, dtype=torch.float64, device=device),
    )
    error = None
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_sync_debug_mode("error")
    try:
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            sample = buffer.sample(batch)
            buffer.update_priorities(
                sample.indices, sample.weights.double(), generations=sample.generations
            )
    except RuntimeError as exc:  # what the sync debug mode raises
        error = str(exc).splitlines()[0]
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "size": size,
        "batch": batch,
        "steps": steps,
        "us_per_step": 1e6 * seconds / steps,
        "sync_free": error is None if cuda else None,
        "sync_error": error,
    }


def cuda_tests() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return {"returncode": done.returncode, "tail": (done.stdout + done.stderr)[-3000:]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no pytest (smoke)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: keep)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "gpu.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    setup = QUICK if args.quick else FULL
    results: dict[str, Any] = {
        "command": command_line(),
        "machine": machine_info(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "setup": dataclasses.asdict(setup),
        "kd_step": {},
        "synthesis_step": {},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every part: a run cut short keeps what it measured
        out.write_text(json.dumps(results, indent=1) + "\n")

    for precision in ("fp32", "bf16"):
        for name, measure in (("kd_step", kd_step), ("synthesis_step", synthesis_step)):
            row = measure(setup, device, precision)
            results[name][precision] = row
            print(f"{name} {precision}: ratio {row['ratio_median']:.3f}", flush=True)
            save()
    results["buffer"] = [
        buffer_syncs(size, 256 if not args.quick else 16, device, 200 if not args.quick else 5)
        for size in setup.buffer_sizes
    ]
    save()
    if not args.quick:
        results["pytest_cuda"] = cuda_tests()
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
