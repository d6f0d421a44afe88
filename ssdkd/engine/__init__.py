"""The run engine: rounds, evaluation, checkpoint/resume, logging and progress."""

from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint"]
