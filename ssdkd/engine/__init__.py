"""The run engine: rounds, evaluation, checkpoint/resume, logging and progress."""

from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from ssdkd.engine.collapse import CollapseWarning

__all__ = ["CheckpointError", "CollapseWarning", "atomic_save", "load_checkpoint"]
