"""What every method's config is made of: shared field groups, validation, overrides.

A method's config is a frozen dataclass that subclasses :class:`DistillationFields` (the
round budget and the student's KD step), and :class:`MetaGeneratorFields` too when the
method synthesises with the meta-learned generator. Each config class belongs to exactly
one method and lives in that method's module with its presets; the registry
(:mod:`ssdkd.methods.registry`) maps config classes to methods. The ``check_*`` helpers
validate fields in a config's ``__post_init__`` with messages that name the field, the
class and the value.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DistillationFields",
    "MetaGeneratorFields",
    "MethodConfig",
    "apply_overrides",
    "check_choice",
    "check_finite",
    "check_non_negative",
    "check_positive",
    "config_to_dict",
]


def check_finite(obj: object) -> None:
    """Reject NaN and ±inf in every float field of the dataclass ``obj``.

    Run it before the range checks: ``nan <= 0`` is false, so they would let NaN through.
    """
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"Expected `{field.name}` of {type(obj).__name__} to be a finite number, "
                f"got {value!r}"
            )


def check_positive(obj: object, *names: str) -> None:
    """Require each named field of ``obj`` to be > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(
                f"Expected `{name}` of {type(obj).__name__} to be positive, got {value!r}"
            )


def check_non_negative(obj: object, *names: str) -> None:
    """Require each named field of ``obj`` to be >= 0."""
    for name in names:
        value = getattr(obj, name)
        if not value >= 0:
            raise ValueError(f"Expected `{name}` of {type(obj).__name__} to be >= 0, got {value!r}")


def check_choice(obj: object, name: str, choices: tuple[str, ...]) -> None:
    """Require the field ``name`` of ``obj`` to be one of ``choices``."""
    value = getattr(obj, name)
    if value not in choices:
        raise ValueError(
            f"Expected `{name}` of {type(obj).__name__} to be one of {choices}, got {value!r}"
        )


@dataclass(frozen=True)
class DistillationFields:
    """Fields every method shares: the round budget and the student's KD steps."""

    rounds: int = 220
    """Number of rounds ("epochs"); each round synthesises once, then runs ``kd_steps``."""
    warmup_rounds: int = 20
    """Rounds of synthesis only at the start: no KD steps and no adversarial term."""
    kd_steps: int = 400
    """Student SGD steps per round after warm-up."""
    kd_batch_size: int = 256
    """Images per student step."""
    temperature: float = 20.0
    """KD softmax temperature T (the loss is KL · T²); Fast-DFKD's CIFAR value."""
    student_lr: float = 0.2
    """Student SGD learning rate, annealed by a cosine schedule over all KD steps."""
    student_momentum: float = 0.9
    """Student SGD momentum."""
    student_weight_decay: float = 1e-4
    """Student SGD weight decay."""
    kd_augment: bool = True
    """Random crop (``crop_padding``) and flip on the KD batches, as Fast-DFKD's pool does."""
    crop_padding: int = 4
    """Zero padding of the random crop, in pixels (0 disables cropping)."""
    flip: bool = True
    """Random horizontal flips during synthesis and KD."""
    kd_mixup: bool = False
    """[ours] Blend each KD image with another of its batch after crop and flip
    (:func:`~ssdkd.generators.random_mixup`, λ ~ U(0.5, 1)); the teacher labels the blend,
    so the student is taught between the synthetic images too. A per-sample KL (SSD-KD's
    priority) is that of the blend, credited to the image with the larger share."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, "rounds", "kd_batch_size", "temperature", "student_lr")
        check_non_negative(
            self,
            "warmup_rounds",
            "kd_steps",
            "student_momentum",
            "student_weight_decay",
            "crop_padding",
        )
        if self.warmup_rounds >= self.rounds:
            raise ValueError(
                f"Expected `warmup_rounds` < `rounds` ({self.rounds}), got {self.warmup_rounds}: "
                "lower `warmup_rounds` or raise `rounds`"
            )


@dataclass(frozen=True)
class MetaGeneratorFields(DistillationFields):
    """The fields of the meta-learned generator's synthesis (Fast-DFKD's round), shared by
    the methods built on it (:class:`~ssdkd.methods.FastDFKDConfig`,
    :class:`~ssdkd.methods.SSDKDConfig`).

    A group of fields, not a method's config: every method config that uses the
    synthesis subclasses it, and the defaults are Fast-2's published CIFAR settings.
    """

    synthesis_batch_size: int = 256
    """Images synthesised per round (one batch)."""
    latent_dim: int = 256
    """Dimension of the generator's latent z."""
    generator_width: int = 64
    """DCGAN width: the generator's convolutions have 2·width and width channels."""
    g_steps: int = 2
    """Inner generator steps per round (the N of Fast-N)."""
    lr_g: float = 5e-3
    """Inner Adam learning rate of the fast generator; the meta step uses lr_g · g_steps."""
    lr_z: float = 0.015
    """Inner Adam learning rate of the latent codes z."""
    meta_algorithm: Literal["fomaml", "reptile"] = "fomaml"
    """Meta update: first-order MAML (published) or Reptile."""
    bn_weight: float = 10.0
    """Weight of the BN-statistics loss."""
    bn_momentum: float = 0.9
    """Momentum m of the BN-statistics EMA ("bn_mmt"); 0 compares the batch alone."""
    oh_weight: float = 0.5
    """Weight of the teacher's cross-entropy on the sampled targets (task loss)."""
    adv_weight: float = 1.33
    """Weight of the agreement-masked adversarial KL after warm-up."""
    conditional_generator: bool = False
    """[ours] Feed the target labels to the generator (one-hot beside z) so it learns to
    produce the class it is asked for; the published generator takes z alone."""
    synthesis_share: float = 1.0
    """[ours] Share of the rounds that synthesise: the first ``round(synthesis_share ·
    rounds)`` rounds (at least one); the later rounds distil on the images already there
    (1: every round, as published). A share, so that a run shortened or lengthened with
    ``rounds`` keeps the proportion. The adversarial generator's late images, made against
    a nearly trained student, can pull the student away from the real data: on
    Fashion-MNIST it fell 2.5 points after its peak while the buffer took them in, and kept
    its peak when synthesis stopped at round 90 of 150 (calibration point 9 of
    ``docs/notes/2026-12-05-benchmarks-history.md``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(
            self, "synthesis_batch_size", "latent_dim", "generator_width", "g_steps", "lr_g"
        )
        check_non_negative(self, "lr_z", "bn_weight", "oh_weight", "adv_weight")
        if not 0.0 < self.synthesis_share <= 1.0:
            raise ValueError(f"Expected `synthesis_share` in (0, 1], got {self.synthesis_share!r}")
        check_choice(self, "meta_algorithm", ("fomaml", "reptile"))
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"Expected `bn_momentum` in [0, 1), got {self.bn_momentum!r}")
        if self.warmup_rounds >= self.synthesis_rounds:
            enough = next(
                r
                for r in range(self.rounds, 100 * self.rounds + 2)
                if max(1, round(self.synthesis_share * r)) > self.warmup_rounds
            )
            raise ValueError(
                f"Expected `warmup_rounds` of {type(self).__name__} ({self.warmup_rounds}) < "
                "the rounds that synthesise, round(synthesis_share · rounds) = "
                f"{self.synthesis_rounds} "
                f"(rounds {self.rounds}, synthesis_share {self.synthesis_share}): synthesis "
                "would stop before the warm-up ends, so the adversarial synthesis never runs "
                f"and the student learns only from warm-up images. Lower `warmup_rounds` "
                f"(below {self.synthesis_rounds}), raise `rounds` (to {enough} or more) or "
                "raise `synthesis_share`"
            )

    @property
    def synthesis_rounds(self) -> int:
        """How many rounds synthesise, from the first: ``round(synthesis_share · rounds)``,
        at least one."""
        return max(1, round(self.synthesis_share * self.rounds))

    def synthesizes(self, round_index: int) -> bool:
        """Whether round ``round_index`` (0-based) synthesises (see ``synthesis_share``)."""
        return self.synthesis_share == 1.0 or round_index < self.synthesis_rounds


MethodConfig = DistillationFields
"""The type of every method's config: each one subclasses :class:`DistillationFields`."""


def config_to_dict(config: MethodConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict with its class name under ``"config_class"``."""
    return {"config_class": type(config).__name__, **dataclasses.asdict(config)}


def _parse_value(cls: type, name: str, text: str) -> Any:
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if text not in choices:
            raise ValueError(f"Expected `{name}` to be one of {choices}, got {text!r}")
        return text
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"Expected `{name}` to be true or false, got {text!r}")
    try:
        return hint(text)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "str": "a string"}.get(
            hint.__name__, f"a {hint.__name__}"
        )
        raise ValueError(f"Expected `{name}` to be {kind}, got {text!r}") from None


def apply_overrides(config: MethodConfig, assignments: Sequence[str]) -> MethodConfig:
    """A copy of ``config`` with ``field=value`` assignments applied (the CLI's ``--set``).

    Values are parsed by the field's type (int, float, bool as true/false, or one of a
    Literal's choices); the new config is validated like any other.

    Raises:
        ValueError: Malformed assignment, unknown field (the message lists the known ones)
            or a value of the wrong type or range.

    Examples:
        >>> config = apply_overrides(DistillationFields(), ["rounds=30", "kd_augment=false"])
        >>> config.rounds, config.kd_augment
        (30, False)
    """
    cls = type(config)
    known = [f.name for f in dataclasses.fields(cls)]
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"Expected a setting as field=value, got {assignment!r}")
        if name not in known:
            raise ValueError(
                f"Unknown field {name!r} for {cls.__name__}; known fields: {', '.join(known)}"
            )
        changes[name] = _parse_value(cls, name, text.strip())
    return dataclasses.replace(config, **changes)
