"""Where a run reports: per-round JSONL metrics, TensorBoard scalars, a progress bar."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["MetricsLog", "Progress", "read_metrics"]


class MetricsLog:
    """Appends one JSON line per round to ``metrics.jsonl``; mirrors numbers to TensorBoard.

    TensorBoard scalars are written to ``run_dir/tensorboard`` when the ``tensorboard``
    package is installed, and skipped silently otherwise.

    Args:
        run_dir: The run directory (created if missing).
        history: Records already logged by an earlier process of the same run; the file
            is rewritten to exactly these before appending, so a resumed run never keeps
            lines of a round that was interrupted.
    """

    def __init__(self, run_dir: Path, history: Sequence[dict[str, Any]] = ()) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "metrics.jsonl"
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(record) + "\n" for record in history))
        os.replace(tmp, self.path)
        self._writer: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        # On resume, hide events of rounds after the checkpoint that a crashed run had
        # already written: they are about to be written again.
        purge = {"purge_step": len(history) + 1} if history else {}
        self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), **purge)

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (one round) and flush it to disk."""
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self._writer is not None:
            step = int(record["round"])
            for key, value in record.items():
                if key != "round" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self._writer is not None:
            self._writer.close()


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the per-round records of a run directory.

    Raises:
        FileNotFoundError: ``run_dir/metrics.jsonl`` does not exist.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"no metrics file {str(path)!r}: is {str(run_dir)!r} a run directory?"
        )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_SHOWN: tuple[tuple[tuple[str, str], ...], ...] = (
    (("accuracy", "acc"),),
    (("kl", "kl"), ("kd_loss", "kd_loss")),
    (("eval_top_class_share", "top_share"),),
    (("data_class_entropy", "data_H"), ("synth_class_entropy", "synth_H")),
    (("images_synthesized", "images"),),
)
"""What the progress display shows: for each slot, the first key the record holds (not
``None``), with its short label."""


class Progress:
    """A progress bar over rounds: tqdm when installed, else one line per round on stderr.

    Each round shows, when its record holds them: ``acc`` (held-out accuracy), ``kl``
    (the mean unweighted KL·T² of the round's KD steps; ``kd_loss``, the optimised loss,
    for a method that reports no ``kl``), ``top_share`` (``eval_top_class_share``),
    ``data_H`` (``data_class_entropy``; ``synth_H``, ``synth_class_entropy``, for a method
    that reports no ``data_class_entropy``) and ``images`` (images synthesised so far).

    Args:
        total: Number of rounds of the run.
        initial: Rounds already done (when resuming).
        enabled: ``False`` prints nothing.
        description: Label of the bar.
    """

    def __init__(
        self, total: int, *, initial: int = 0, enabled: bool = True, description: str = ""
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.description = description
        self._bar: Any = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, initial=initial, desc=description, unit="round", leave=False)

    def update(self, record: dict[str, Any]) -> None:
        """Advance by one round and show its headline numbers."""
        if not self.enabled:
            return
        shown = {}
        for slot in _SHOWN:
            for key, label in slot:
                value = record.get(key)
                if value is not None:
                    shown[label] = f"{value:.3g}" if isinstance(value, float) else value
                    break
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)
        else:
            parts = " ".join(f"{k}={v}" for k, v in shown.items())
            print(
                f"{self.description} round {record['round']}/{self.total} {parts}", file=sys.stderr
            )

    def write(self, message: str) -> None:
        """Print ``message`` on its own line of stderr, above the bar (nothing when disabled)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def warn(self, message: str, category: type[Warning], *, stacklevel: int = 1) -> None:
        """Print ``warning: message`` (as :meth:`write`), then issue it as a Python warning.

        The warning is issued with the bar cleared, so that its display on stderr starts a
        line of its own. ``stacklevel`` counts from the caller, as for :func:`warnings.warn`.
        """
        self.write(f"warning: {message}")
        if self._bar is None:
            warnings.warn(message, category, stacklevel=stacklevel + 1)
            return
        with self._bar.external_write_mode(file=sys.stderr):
            warnings.warn(message, category, stacklevel=stacklevel + 1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
