"""The interface the run engine drives, the bookkeeping every method shares, and the
:class:`MethodSpec` by which the registry declares a method."""

from __future__ import annotations

import copy
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ssdkd.generators import Augment, channel_values
from ssdkd.losses import KDLoss
from ssdkd.methods.common import ModelInput, TransferPool, freeze_teacher
from ssdkd.methods.config import DistillationFields, MethodConfig
from ssdkd.methods.diagnostics import counts_entropy
from ssdkd.methods.parallel import DataParallel
from ssdkd.methods.precision import Precision, SlowPrecisionWarning
from ssdkd.methods.streams import RandomStreams
from ssdkd.methods.student import StudentLoss, StudentStep

__all__ = ["DistillationMethod", "MethodSpec", "PoolMethod", "RoundPlan"]


def _probe(
    network: nn.Module,
    role: str,
    image_shape: tuple[int, int, int],
    num_classes: int,
    model_input: ModelInput,
    device: torch.device,
) -> None:
    """One forward pass of two blank images in eval mode, without gradients (no state
    changes; the mode is restored), so that a wrong ``image_shape`` or ``num_classes`` is
    an error naming the argument now, not a shape error deep inside the first round.

    Raises:
        ValueError: ``network`` does not take ``(B, *image_shape)`` images, or does not
            return ``(B, num_classes)`` logits.
    """
    was_training = network.training
    images = torch.zeros(2, *image_shape, device=device)
    try:
        network.eval()
        with torch.no_grad():
            logits = network(model_input(images))
    except (RuntimeError, ValueError, IndexError) as error:
        raise ValueError(
            f"Expected the {role} to take images of `image_shape` {image_shape} (batches "
            f"(B, {', '.join(map(str, image_shape))})), but a batch of 2 failed: {error}"
        ) from error
    finally:
        network.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"Expected the {role} to return logits of shape (B, num_classes), got {found} "
            "for a batch of 2"
        )
    if logits.shape[1] != num_classes:
        raise ValueError(
            f"Expected `num_classes` to match the {role}'s {logits.shape[1]} output logits, "
            f"got num_classes={num_classes}"
        )


@dataclass(frozen=True)
class RoundPlan:
    """How one round alternates synthesis and student steps.

    The engine runs ``iterations`` times: one :meth:`DistillationMethod.synthesize`, then
    ``student_steps`` calls of :meth:`DistillationMethod.distill_step`. A method whose
    synthesis is a whole round of inversion (DeepInversion, Fast-DFKD, SSD-KD) takes one
    iteration; a method that alternates one generator step with a few student steps
    thousands of times makes a round of many iterations, so evaluation, checkpoints and
    log lines come once per round, not once per generator step.

    Raises:
        ValueError: ``iterations`` below 1 or ``student_steps`` below 0.

    Examples:
        >>> RoundPlan(iterations=50, student_steps=5)
        RoundPlan(iterations=50, student_steps=5)
    """

    iterations: int = 1
    """Synthesis calls in the round, each followed by ``student_steps`` student steps."""
    student_steps: int = 0
    """Student steps after each synthesis call."""

    def __post_init__(self) -> None:
        for name, low in (("iterations", 1), ("student_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Expected `{name}` to be an int >= {low}, got {value!r}")


class DistillationMethod(ABC):
    """A data-free distillation method as two steps: :meth:`synthesize` and :meth:`distill_step`.

    A method owns its models' optimisers, its synthetic data and its random streams; it
    owns no loop, file or log. The engine runs each round as :meth:`round_plan` says: by
    default :meth:`synthesize` once, then :meth:`distill_step` ``config.kd_steps`` times
    after the ``config.warmup_rounds`` warm-up rounds.

    Args:
        teacher: A trained network with BatchNorm layers; put in eval mode and frozen.
        student: The network to train (in place).
        config: The method's frozen config.
        num_classes: Number of classes of the teacher's output.
        image_shape: ``(C, H, W)`` of the teacher's input images.
        normalization: ``(mean, std)`` per channel that the teacher's inputs were
            normalised with, for images in [0, 1] (a number each for single-channel
            images); synthetic images live in [0, 1] and are normalised with it.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        seed: Seeds the method's random streams, one per role (synthesis, KD
            augmentation, transfer-set draws: :class:`~ssdkd.methods.streams.RandomStreams`,
            each derived from the seed, the role and the rank) and the initial weights of
            the networks the method creates (the meta generator). The student's and
            teacher's weights are the caller's (``create_model(..., seed=)``); torch's
            global random state is neither read nor changed, except by the networks'
            own forward passes (dropout).
        device: Where the models and synthetic data live (default: the student's device).
        parallel: The rank this method runs as (default: one process). With several
            processes each rank synthesises and distils on its equal share of every
            batch (``kd_batch_size`` and ``synthesis_batch_size`` must be divisible by the
            number of processes), gradients are averaged, and the student, generator and
            BN-statistics targets stay identical on every rank; see
            ``docs/concepts/distributed.md``. Rank 0's teacher and student weights are
            broadcast to the other ranks.
    """

    config_class: ClassVar[type[DistillationFields]]
    """The one config class this method takes (not a subclass, not another method's)."""
    needs_batchnorm: ClassVar[bool] = True
    learns_from_teacher: bool = True
    """Whether the student step's reference is the teacher's logits (otherwise: labels); a
    method may decide it from its config before calling ``__init__``."""
    needs_train_data: ClassVar[bool] = False
    """Whether the method takes real training data (``train_data=``); only the real-data
    bound does."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        config: MethodConfig,
        *,
        num_classes: int,
        image_shape: tuple[int, int, int],
        normalization: tuple[float | Sequence[float], float | Sequence[float]],
        precision: str = "fp32",
        seed: int = 0,
        device: torch.device | None = None,
        parallel: DataParallel | None = None,
    ) -> None:
        self.check_config(config)
        if num_classes < 2:
            raise ValueError(f"Expected `num_classes` >= 2, got {num_classes}")
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"Expected `image_shape` as (C, H, W), got {image_shape}")
        mean = channel_values("normalization[0] (mean)", normalization[0])
        std = channel_values("normalization[1] (std)", normalization[1])
        if len(mean) != image_shape[0] or len(std) != image_shape[0]:
            raise ValueError(
                f"Expected `normalization` with {image_shape[0]} channel value(s) each, "
                f"got mean {tuple(mean)} and std {tuple(std)}"
            )
        if not all(0.0 <= m <= 1.0 for m in mean) or not all(0.0 < v <= 1.0 for v in std):
            raise ValueError(
                "Expected `normalization` of images in [0, 1] (each mean in [0, 1], each "
                f"std in (0, 1]), got mean {tuple(mean)} and std {tuple(std)}: statistics of "
                "0-255 pixels are these divided by 255"
            )
        self.parallel = DataParallel.single() if parallel is None else parallel
        if self.parallel.active and precision == "fp16":
            raise ValueError(
                "Expected `precision` 'fp32' or 'bf16' with several processes, got 'fp16' "
                "(each rank's gradient scaler would find its own scale)"
            )
        self.kd_batch_share = self.parallel.share(config.kd_batch_size, "kd_batch_size")
        if device is None:
            device = next(student.parameters()).device
        self.device = torch.device(device)
        self.teacher = freeze_teacher(teacher.to(self.device), needs_batchnorm=self.needs_batchnorm)
        self.student = student.to(self.device)
        # Every rank starts from rank 0's networks, as DistributedDataParallel does.
        self.parallel.broadcast_(self.teacher)
        self.parallel.broadcast_(self.student)
        self.config = config
        self.num_classes = num_classes
        self.image_shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
        self.model_input = ModelInput(mean, std)
        for role, network in (("teacher", self.teacher), ("student", self.student)):
            _probe(network, role, self.image_shape, num_classes, self.model_input, self.device)
        self.precision = Precision(precision, self.device)
        if precision == "fp16" and self.device.type == "cpu":
            warnings.warn(
                "precision 'fp16' runs emulated on the CPU, many times slower than 'fp32'; "
                "'bf16' is the reduced precision the CPU runs fast",
                SlowPrecisionWarning,
                stacklevel=2,
            )
        self.seed = seed
        """The run's seed: this rank's random streams and every initialisation derive from it."""
        self.streams = RandomStreams(seed, self.device, rank=self.parallel.rank)
        """One random stream per role, so an ablation of one role leaves the others' draws."""
        self.images_synthesized = 0
        self.kd_steps_done = 0
        optimizer = self.student_optimizer()
        self.trainer = StudentStep(
            self.student,
            optimizer,
            self.student_loss(),
            teacher=self.teacher if self.learns_from_teacher else None,
            model_input=self.model_input,
            scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, self.student_steps_total())
            ),
            precision=self.precision,
            augment=(
                Augment(crop_padding=config.crop_padding, flip=config.flip)
                if config.kd_augment
                else None
            ),
            mixup=config.kd_mixup,
            generator=self.streams.kd_augmentation,
            kl_temperature=config.temperature if self.learns_from_teacher else None,
            parallel=self.parallel,
        )
        """The student's step: :meth:`student_optimizer` with a cosine schedule over the
        run's :meth:`student_steps_total` steps."""

    def student_optimizer(self) -> torch.optim.Optimizer:
        """The student's optimiser: SGD at ``student_lr`` with ``student_momentum`` and
        ``student_weight_decay``. A method whose paper trains the student otherwise (Adam)
        overrides this."""
        cfg = self.config
        return torch.optim.SGD(
            self.student.parameters(),
            lr=cfg.student_lr,
            momentum=cfg.student_momentum,
            weight_decay=cfg.student_weight_decay,
        )

    def student_steps_total(self) -> int:
        """The student steps of the whole run (the cosine schedule's length): by default
        ``kd_steps`` in every round after warm-up; a method with its own
        :meth:`round_plan` says its own count."""
        cfg = self.config
        return (cfg.rounds - cfg.warmup_rounds) * cfg.kd_steps

    def student_loss(self) -> StudentLoss:
        """The student's per-sample loss: KL(teacher ‖ student)·T² at ``config.temperature``.

        A method whose student learns from another loss (L1 on logits, an extra attention
        term) overrides this.
        """
        return KDLoss(temperature=self.config.temperature)

    @classmethod
    def check_config(cls, config: object) -> None:
        """Refuse a config that is not exactly :attr:`config_class`.

        Raises:
            TypeError: Another method's config (or a subclass of this method's).
        """
        if type(config) is not cls.config_class:
            raise TypeError(
                f"Expected `config` of {cls.__name__} to be a {cls.config_class.__name__}, "
                f"got a {type(config).__name__}: a config belongs to exactly one method "
                "(see ssdkd.methods.METHODS)"
            )

    def round_plan(self, round_index: int) -> RoundPlan:
        """How round ``round_index`` (0-based) alternates synthesis and student steps.

        The default: one synthesis, then ``config.kd_steps`` student steps once the
        ``config.warmup_rounds`` warm-up rounds are over (none before).
        """
        cfg = self.config
        return RoundPlan(1, cfg.kd_steps if round_index >= cfg.warmup_rounds else 0)

    @abstractmethod
    def synthesize(self, round_index: int) -> dict[str, float]:
        """Run one synthesis of round ``round_index`` (0-based); returns its metrics.

        Called :attr:`RoundPlan.iterations` times per round.
        """

    @abstractmethod
    def distill_step(self) -> dict[str, torch.Tensor | float]:
        """Run one student step; returns its metrics (``kd_loss``, ``skipped``, ...).

        Values may be 0-dim tensors still on the device: the engine reads all steps of a
        round back in one transfer, so a step never waits for the device.
        """

    @abstractmethod
    def synthetic_images(self) -> torch.Tensor:
        """The synthetic images the student currently learns from, ``(N, C, H, W)``."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: models, optimisers, data, RNG, counters."""
        return {
            "trainer": self.trainer.state_dict(),
            "precision": self.precision.state_dict(),
            "streams": self.streams.state_dict(),
            "images_synthesized": self.images_synthesized,
            "kd_steps_done": self.kd_steps_done,
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        The state is deep-copied first: optimisers keep the tensors they are given, so
        loading a live method's state would otherwise tie the two methods' optimiser
        moments together.
        """
        if "streams" not in state:
            raise ValueError(
                "Expected a method state with per-role random streams ('streams'), got one "
                f"without (keys {sorted(state)}): it was written by an ssdkd version with one "
                "shared stream and cannot be resumed exactly by this one"
            )
        state = copy.deepcopy(state)
        self.trainer.load_state_dict(state["trainer"])
        self.precision.load_state_dict(state["precision"])
        self.streams.load_state_dict(state["streams"])
        self.images_synthesized = int(state["images_synthesized"])
        self.kd_steps_done = int(state["kd_steps_done"])
        self._load_extra_state(state)


class PoolMethod(DistillationMethod):
    """A method whose student learns from a uniformly sampled :class:`TransferPool`.

    Subclasses implement :meth:`synthesize` and add their images with :meth:`_add_to_pool`.
    With several processes each rank keeps its own pool of ``pool_capacity / N`` images
    (``pool_capacity`` must then be divisible by the number of processes; 0: unbounded).
    """

    def __init__(self, *args: Any, pool_capacity: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        capacity = self.parallel.share(pool_capacity, "pool_capacity")
        self.pool = TransferPool(capacity, self.streams.transfer)

    def _add_to_pool(self, images: torch.Tensor, teacher_logits: torch.Tensor) -> dict[str, float]:
        """Add a batch with the teacher's logits on it; returns :meth:`_pool_metrics`."""
        self.pool.add(images, teacher_logits.argmax(dim=1))
        self.images_synthesized += int(images.shape[0])
        return self._pool_metrics()

    def _pool_metrics(self) -> dict[str, float]:
        """The count of images synthesised and the pool's class entropy.

        With several processes the entropy is the one of all ranks' pools together.
        """
        assert self.pool.labels is not None
        counts = torch.bincount(self.pool.labels, minlength=self.num_classes)[: self.num_classes]
        return {
            "images_synthesized": float(self.images_synthesized),
            "data_class_entropy": float(counts_entropy(self.parallel.sum(counts))),
        }

    def distill_step(self) -> dict[str, torch.Tensor | float]:
        metrics = self.trainer.step(self.pool.sample(self.kd_batch_share)).metrics
        self.kd_steps_done += 1
        return dict(metrics)

    def synthetic_images(self) -> torch.Tensor:
        if self.pool.images is None:
            return torch.zeros(0, *self.image_shape, device=self.device)
        return self.pool.images

    def _extra_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state_dict(state["pool"])


@dataclass(frozen=True)
class MethodSpec:
    """A method as the registry declares it: its name, class and named presets.

    Everything else derives from it: the method's config class
    (``method_class.config_class``), its default (the ``"paper"`` preset), the names
    ``ssdkd distill --method`` accepts and the JSON round trip of its configs.

    Raises:
        ValueError: No ``"paper"`` preset, or a preset that is not exactly an instance of
            the method's config class.
    """

    name: str
    """The name ``ssdkd.distill(method=...)`` and ``ssdkd distill --method`` take."""
    method_class: type[DistillationMethod]
    """The class the engine builds."""
    presets: Mapping[str, DistillationFields]
    """Preset name → config; ``"paper"`` is the published setting and the default."""
    summary: str
    """One line for the command line's help and the docs."""

    def __post_init__(self) -> None:
        if "paper" not in self.presets:
            raise ValueError(f"Expected a 'paper' preset for method {self.name!r}, got none")
        for preset, config in self.presets.items():
            if type(config) is not self.config_class:
                raise ValueError(
                    f"Expected preset {preset!r} of method {self.name!r} to be a "
                    f"{self.config_class.__name__}, got a {type(config).__name__}"
                )

    @property
    def config_class(self) -> type[DistillationFields]:
        """The one config class the method takes."""
        return self.method_class.config_class

    @property
    def default(self) -> DistillationFields:
        """The published setting: the ``"paper"`` preset."""
        return self.presets["paper"]
