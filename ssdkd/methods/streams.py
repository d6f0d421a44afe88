"""One random stream per role of a method, so that changing one role leaves the others' draws.

A method draws random numbers for three independent purposes: synthesis (latents,
targets, pixel initialisation, the teacher-side augmentation of inversion), the
student's KD augmentation (crop, flip, mixup), and the transfer set's draws (which
stored images a KD batch uses, which slot a new image replaces). With one shared
stream, an ablation that draws one number more or fewer in one role (priority
sampling off, another refresh policy, mixup on) shifts every later number of the
other roles, and the two arms differ by more than the ablated part. With one stream
per role, two runs of the same seed draw the same synthesis numbers however they
sample and augment, and the same sampling numbers however they synthesise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["STREAM_ROLES", "RandomStreams", "stream_seed"]

STREAM_ROLES = ("synthesis", "kd_augmentation", "transfer")
"""The roles that each get their own stream, in the order their seeds are derived."""


def stream_seed(seed: int, role: str, rank: int = 0) -> int:
    """The seed of ``role``'s stream on process ``rank`` of a run seeded ``seed``.

    Derived from ``(seed, rank, role)`` by :class:`numpy.random.SeedSequence`: distinct
    for every role and rank, the same in every run, and independent of torch's global
    random state.

    Raises:
        ValueError: ``role`` is not one of :data:`STREAM_ROLES`, or ``seed`` or ``rank``
            is negative.

    Examples:
        >>> stream_seed(0, "synthesis") == stream_seed(0, "synthesis")
        True
        >>> stream_seed(0, "synthesis") != stream_seed(0, "transfer")
        True
    """
    if role not in STREAM_ROLES:
        raise ValueError(f"Expected `role` to be one of {STREAM_ROLES}, got {role!r}")
    if seed < 0 or rank < 0:
        raise ValueError(f"Expected a non-negative `seed` and `rank`, got {seed} and {rank}")
    key = (rank, STREAM_ROLES.index(role))
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class RandomStreams:
    """A :class:`torch.Generator` for each of :data:`STREAM_ROLES`, seeded from one seed.

    Args:
        seed: The run's seed.
        device: Where the generators draw (a CUDA generator for CUDA tensors).
        rank: The process's rank (every rank gets its own streams).

    Examples:
        >>> a, b = RandomStreams(3, "cpu"), RandomStreams(3, "cpu")
        >>> _ = torch.rand(5, generator=a.transfer)  # draws on one role only ...
        >>> torch.equal(torch.rand(2, generator=a.synthesis), torch.rand(2, generator=b.synthesis))
        True
    """

    def __init__(self, seed: int, device: torch.device | str, *, rank: int = 0) -> None:
        def make(role: str) -> torch.Generator:
            return torch.Generator(device=device).manual_seed(stream_seed(seed, role, rank))

        self.synthesis = make("synthesis")
        """Latents, targets, initial pixels and the augmentation inside inversion."""
        self.kd_augmentation = make("kd_augmentation")
        """The student's augmentation of KD batches (crop, flip, mixup)."""
        self.transfer = make("transfer")
        """The transfer set's draws: KD batches, and which stored image a new one replaces."""

    def _by_role(self) -> dict[str, torch.Generator]:
        return {role: getattr(self, role) for role in STREAM_ROLES}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Each role's generator state."""
        return {role: generator.get_state() for role, generator in self._by_role().items()}

    def load_state_dict(self, state: Any) -> None:
        """Restore :meth:`state_dict`; on a bad ``state`` nothing changes.

        Raises:
            ValueError: ``state`` is not a mapping of every role to a generator state.
        """
        if not isinstance(state, dict) or set(state) != set(STREAM_ROLES):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"Expected random-stream state with the roles {list(STREAM_ROLES)}, got {found}"
            )
        before = self.state_dict()
        try:
            for role, generator in self._by_role().items():
                generator.set_state(state[role])
        except (RuntimeError, TypeError) as error:
            for role, generator in self._by_role().items():
                generator.set_state(before[role])
            raise ValueError(f"Expected a generator state for every role: {error}") from error
