"""Helpers shared by the benchmark scripts: machine description and docs sections."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = 5000
"""The calibration split: the last training images (the student never sees real images;
nothing is tuned on the test set). ``calibration.py`` tunes there; ``efficiency.py`` also
scores each final student there, to measure how far that split is from the test set."""
FASHION_MNIST_TEACHER = ROOT / "benchmarks" / "teachers" / "fashion-mnist_small_cnn.pt"
"""The Fashion-MNIST studies' teacher, kept in the repository: retraining gives another
teacher (multi-threaded CPU training is not bit-reproducible), and a study that continues
in a later sitting must distil the same one."""


def machine_info() -> dict[str, Any]:
    """CPU model, core count, Python/torch versions and thread settings of this run, and
    the library's commit (``+dirty`` when ``ssdkd/`` or ``benchmarks/`` has uncommitted
    changes)."""
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"^Model name:\s*(.+)$", lscpu, re.MULTILINE)
        if match:
            model = match.group(1).strip()
    except OSError:
        pass
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=here,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", str(here.parent / "ssdkd"), str(here)],
            capture_output=True,
            text=True,
            check=False,
            cwd=here,
        ).stdout.strip()
        if commit and changed:
            commit += "+dirty"  # the library or the benchmarks had uncommitted changes
    except OSError:
        commit = ""
    return {
        "git_commit": commit or None,
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One markdown line naming the machine of ``info``."""
    return (
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"torch {info['torch']}, {info['torch_threads']} torch threads"
    )


def command_line() -> str:
    """The command that started this process, as a shell line (with OMP_NUM_THREADS)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    return prefix + "python " + " ".join(shlex.quote(arg) for arg in sys.argv)


def shown_path(path: Path) -> str:
    """``path`` as a page shows it: relative to the repository root where it lies inside,
    as given otherwise."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def write_section(path: Path, key: str, body: str) -> None:
    """Put ``body`` between ``<!-- key begin -->`` / ``<!-- key end -->`` markers in ``path``.

    An existing section with the same key is replaced in place; otherwise the section is
    appended, so the other sections of the file are kept as they are.
    """
    begin, end = f"<!-- {key} begin -->", f"<!-- {key} end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as one JSON line to ``path`` atomically (a temporary file, then a
    rename): a run stopped mid-write leaves no truncated result file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload) + "\n")
    os.replace(tmp, path)
