"""Where a run reports: per-round JSONL metrics, TensorBoard scalars, a progress bar."""

from __future__ import annotations

import json
import os
import sys
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
        self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

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


class Progress:
    """A progress bar over rounds: tqdm when installed, else one line per round on stderr.

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
        shown = {
            key: f"{record[key]:.4g}" if isinstance(record[key], float) else record[key]
            for key in ("accuracy", "kd_loss", "images_synthesized")
            if record.get(key) is not None
        }
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(1)
        else:
            parts = " ".join(f"{k}={v}" for k, v in shown.items())
            print(
                f"{self.description} round {record['round']}/{self.total} {parts}", file=sys.stderr
            )

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
