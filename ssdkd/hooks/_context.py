"""The enter/exit life cycle shared by the recording hooks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from torch.utils.hooks import RemovableHandle
from typing_extensions import Self

__all__ = ["RecordingContext"]


class RecordingContext(ABC):
    """Base of the hook context managers: owns the handles and the "is it open" state.

    Subclasses implement :meth:`_register` (attach hooks, appending each handle to the
    list it is given, so that a failure half-way still removes the ones attached) and
    :meth:`_clear` (drop what was recorded). The rules they inherit:

    - an instance may be entered again after it closed, but not while it is open;
    - every handle is removed on exit, also when the body raised;
    - recorded values are dropped on exit, so that a finished pass cannot be read by
      mistake and its autograd graph is released.
    """

    _kind = "hook"

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []
        self._open = False

    @abstractmethod
    def _register(self, handles: list[RemovableHandle]) -> None:
        """Attach the hooks, appending each handle to ``handles``."""

    @abstractmethod
    def _clear(self) -> None:
        """Drop what was recorded."""

    def _check_enter(self) -> None:  # noqa: B027 (an optional hook: no checks by default)
        """Extra checks before any handle is attached (the model is left untouched)."""

    @property
    def is_open(self) -> bool:
        """Whether the ``with`` block of this instance is running."""
        return self._open

    def _require_open(self, what: str) -> None:
        if not self._open:
            raise RuntimeError(
                f"{type(self).__name__}.{what} is only available inside its `with` block; "
                "the recorded values are dropped when the block closes. Read them before the "
                "block ends (or keep your own reference to them)."
            )

    def __enter__(self) -> Self:
        if self._open:
            raise RuntimeError(
                f"{type(self).__name__} is already entered; an instance records one block "
                "at a time (create a second instance to nest)."
            )
        self._check_enter()
        self._clear()
        handles: list[RemovableHandle] = []
        try:
            self._register(handles)
        except BaseException:
            for handle in handles:
                handle.remove()
            raise
        self._handles = handles
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._open = False
        self._clear()

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"{type(self).__name__}({self._describe()}, {state})"

    def _describe(self) -> str:
        return ""
