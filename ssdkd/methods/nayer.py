"""NAYER (Tran et al., CVPR 2024): noisy layers on label embeddings, its config, presets and
method.

The generator has no optimised latent: each class has a fixed label embedding, and the
randomness of a batch comes from *noisy layers*, linear layers re-initialised before every
synthesis loop, one per chunk of the batch, between the embedding and a DCGAN generator
that is re-created only every ``g_life`` rounds. The paper embeds "a photo of {class}"
with a text encoder; nothing is downloaded here, so the embeddings come from a file of the
user's (``embeddings_file``) or are fixed random orthonormal codes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.generators import Augment, DCGANGenerator
from ssdkd.hooks import BNLayerStats
from ssdkd.losses import BNStatMomentum, adversarial_kl
from ssdkd.methods.base import MethodSpec, PoolMethod, RoundPlan
from ssdkd.methods.budgets import FASHION_BUDGET
from ssdkd.methods.common import frozen_weights
from ssdkd.methods.config import DistillationFields, check_non_negative, check_positive
from ssdkd.methods.diagnostics import batch_diagnostics
from ssdkd.methods.inversion import invert
from ssdkd.methods.precision import NonFiniteLossError, Precision

__all__ = [
    "NAYER",
    "NAYER_100",
    "NAYER_200",
    "NAYER_300",
    "NAYER_FASHION_MNIST",
    "SPEC",
    "NAYERConfig",
    "NoisyEmbeddingGenerator",
    "label_embeddings",
]


@dataclass(frozen=True)
class NAYERConfig(DistillationFields):
    """NAYER. The defaults are the paper's CIFAR-10 settings (NAYER-100).

    A warm-up round runs ``warmup_loops`` synthesis loops and no student step; every later
    round runs ``loops`` loops, then ``kd_steps`` student steps on the pool.
    """

    rounds: int = 120
    warmup_rounds: int = 20
    kd_steps: int = 400
    kd_batch_size: int = 512
    temperature: float = 20.0
    student_lr: float = 0.2
    synthesis_batch_size: int = 400
    """Images per loop; a multiple of the number of classes (every class equally often)."""
    g_steps: int = 30
    """Adam steps per loop."""
    lr_g: float = 4e-3
    """Adam learning rate of the generator and the noisy layers."""
    warmup_loops: int = 10
    """Synthesis loops per warm-up round."""
    loops: int = 2
    """Synthesis loops per round after the warm-up."""
    g_life: int = 10
    """Rounds between re-creations of the generator."""
    embedding_dim: int = 512
    """Dimension of the label embeddings (of the random codes; a file's own otherwise)."""
    embeddings_file: str = ""
    """A ``torch.save``'d ``(num_classes, D)`` float tensor of label embeddings (e.g. a text
    encoder's embedding of "a photo of {class}"); empty: fixed random orthonormal codes of
    ``embedding_dim`` drawn from the run's seed."""
    noise_dim: int = 1000
    """Output dimension of each noisy layer."""
    chunk_size: int = 0
    """Samples per noisy layer (0: the number of classes, one of each class per chunk)."""
    generator_width: int = 64
    """DCGAN width of the generator."""
    bn_weight: float = 10.0
    """Weight of the BN-statistics loss (momentum form)."""
    bn_momentum: float = 0.9
    """Momentum of the BN-statistics EMA."""
    oh_weight: float = 0.5
    """Weight of the teacher's cross-entropy on the targets."""
    adv_weight: float = 1.33
    """Weight of the adversarial term, after the warm-up."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(
            self,
            "synthesis_batch_size",
            "g_steps",
            "lr_g",
            "warmup_loops",
            "loops",
            "g_life",
            "embedding_dim",
            "noise_dim",
            "generator_width",
        )
        check_non_negative(self, "chunk_size", "bn_weight", "oh_weight", "adv_weight")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"Expected `bn_momentum` in [0, 1), got {self.bn_momentum!r}")


NAYER_100 = NAYERConfig()
"""NAYER-100 (CIFAR-10): 20 warm-up rounds of 10 loops, then 100 rounds of 2 loops and 400
KD steps (batch 512, T = 20, SGD 0.2); loops of 400 images, 30 Adam steps at 4e-3; the
generator re-created every 10 rounds; BN/one-hot/adversarial weights 10/0.5/1.33."""
NAYER_200 = dataclasses.replace(NAYER_100, rounds=220)
"""NAYER-200: 200 rounds after the warm-up."""
NAYER_300 = dataclasses.replace(NAYER_100, rounds=320)
"""NAYER-300: 300 rounds after the warm-up."""
NAYER_FASHION_MNIST = NAYERConfig(
    **{**FASHION_BUDGET, "warmup_rounds": 4},
    rounds=44,
    kd_steps=100,
    synthesis_batch_size=120,
    warmup_loops=4,
    loops=1,
    generator_width=32,
)
"""NAYER at 28×28: 4 warm-up rounds of 4 loops, then 40 rounds of one 120-image loop (12 of
each class; 30 Adam steps at 4e-3) and 100 KD steps; the student budget of the other
28×28 presets (batch 128, T = 4, SGD 0.01, crop padding 2). A generator of width 32
instead of 64 (a quarter of the convolution work: a 2-core CPU runs the whole schedule in
about 13 minutes); generator life, loss weights and embeddings as the paper's."""


def label_embeddings(
    num_classes: int, dim: int, *, path: str | os.PathLike[str] = "", seed: int = 0
) -> Tensor:
    """The label embeddings: a ``(num_classes, D)`` float tensor loaded from ``path``, or,
    without one, ``num_classes`` orthonormal random codes of dimension ``dim`` (a fixed
    function of ``seed``).

    Raises:
        ValueError: The file does not hold a 2-D floating-point tensor with one row per
            class, or ``dim`` < ``num_classes`` for the random codes.

    Examples:
        >>> codes = label_embeddings(3, 5, seed=0)
        >>> torch.allclose(codes @ codes.T, torch.eye(3), atol=1e-6)
        True
    """
    if path:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if (
            not isinstance(loaded, Tensor)
            or loaded.dim() != 2
            or not loaded.is_floating_point()
            or loaded.shape[0] != num_classes
        ):
            shape = tuple(loaded.shape) if isinstance(loaded, Tensor) else type(loaded).__name__
            raise ValueError(
                f"Expected `embeddings_file` {str(path)!r} to hold a ({num_classes}, D) "
                f"floating-point tensor, got {shape}"
            )
        return loaded.float()
    if dim < num_classes:
        raise ValueError(
            f"Expected `embedding_dim` >= the {num_classes} classes for orthonormal codes, "
            f"got {dim}"
        )
    gaussian = torch.randn(dim, num_classes, generator=torch.Generator().manual_seed(seed))
    q, _ = torch.linalg.qr(gaussian)
    return q.T.contiguous()


class NoisyEmbeddingGenerator(nn.Module):
    """NAYER's generator: label embedding → BatchNorm1d → a noisy layer per chunk of the
    batch → a DCGAN generator (its first linear layer takes the noisy layers' output).

    Args:
        embeddings: ``(num_classes, D)`` fixed label embeddings (a buffer, not trained).
        chunks: Number of noisy layers (the batch is split into this many equal chunks).
        noise_dim: Output dimension of each noisy layer.
        image_size: Side of the square images.
        channels: Image channels.
        width: DCGAN width.

    Examples:
        >>> g = NoisyEmbeddingGenerator(torch.eye(4), chunks=2, noise_dim=8, image_size=8,
        ...                             channels=1, width=4)
        >>> g(torch.tensor([0, 1, 2, 3])).shape
        torch.Size([4, 1, 8, 8])
    """

    def __init__(
        self,
        embeddings: Tensor,
        *,
        chunks: int,
        noise_dim: int,
        image_size: int,
        channels: int,
        width: int,
    ) -> None:
        super().__init__()
        dim = embeddings.shape[1]
        self.register_buffer("embeddings", embeddings.clone())
        self.norm = nn.BatchNorm1d(dim)
        self.noisy = nn.ModuleList(nn.Linear(dim, noise_dim) for _ in range(chunks))
        self.body = DCGANGenerator(
            latent_dim=noise_dim, image_size=image_size, channels=channels, width=width
        )

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Re-draw every noisy layer: weights N(0, 1), biases 0."""
        for layer in self.noisy:
            assert isinstance(layer, nn.Linear)
            weight = layer.weight
            weight.copy_(torch.randn(weight.shape, generator=generator, device=weight.device))
            layer.bias.zero_()

    def forward(self, targets: Tensor) -> Tensor:
        """Images in [0, 1] for ``targets`` ``(B,)``, B divisible by the number of chunks."""
        embeddings = self.embeddings
        assert isinstance(embeddings, Tensor)
        codes = self.norm(embeddings[targets])
        chunks = codes.chunk(len(self.noisy))
        noise = torch.cat([layer(chunk) for layer, chunk in zip(self.noisy, chunks, strict=True)])
        return self.body(noise)


class NAYER(PoolMethod):
    """NAYER (Tran et al., CVPR 2024): noisy-layer generation from label embeddings.

    Every loop draws a class-balanced batch of targets (each class ``B / K`` times, in a
    random order), re-draws the noisy layers and runs ``g_steps`` Adam steps on the
    generator and the noisy layers of ``bn·L_BN(momentum form) + oh·CE(T(x̃), y)
    − adv·mean(𝟙[agree]·KL(p_T ‖ p_S))`` (the adversarial term after the warm-up), x̃ a
    randomly cropped and flipped view; the lowest-loss batch joins the pool. The
    generator is re-created every ``g_life`` rounds. Student steps draw uniformly from the
    pool.

    With several processes each rank generates its own share of every loop's batch with its
    own generator into its own pool.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.
    """

    config_class = NAYERConfig
    config: NAYERConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: NAYERConfig, **kwargs: Any
    ) -> None:
        super().__init__(teacher, student, config, **kwargs)
        self.batch_share = self.parallel.share(config.synthesis_batch_size, "synthesis_batch_size")
        classes = self.num_classes
        if self.batch_share % classes:
            raise ValueError(
                f"Expected each process's share of `synthesis_batch_size` ({self.batch_share}) "
                f"to be a multiple of the {classes} classes"
            )
        self.chunk = config.chunk_size or classes
        if self.batch_share % self.chunk:
            raise ValueError(
                f"Expected `chunk_size` ({self.chunk}) to divide each process's batch share "
                f"({self.batch_share})"
            )
        self.embeddings = label_embeddings(
            classes, config.embedding_dim, path=config.embeddings_file, seed=self.seed
        ).to(self.device)
        self.label_generator: NoisyEmbeddingGenerator | None = None
        self.bn_loss = BNStatMomentum(momentum=config.bn_momentum)
        self.augment = Augment(crop_padding=config.crop_padding, flip=config.flip)
        # The synthesis's own instance: its loss needs its own fp16 gradient scale.
        self.synthesis_precision = Precision(self.precision.mode, self.device)

    def round_plan(self, round_index: int) -> RoundPlan:
        warm = round_index < self.config.warmup_rounds
        return RoundPlan(1, 0 if warm else self.config.kd_steps)

    def _new_generator(self, seed: int | None = None) -> NoisyEmbeddingGenerator:
        """A generator initialised from ``seed`` (default: one drawn from the synthesis
        stream); torch's global random state is left as it was. ``_load_extra_state``
        passes a fixed seed: the weights are then overwritten and no stream is drawn."""
        cfg = self.config
        channels, size, _ = self.image_shape
        if seed is None:
            seed = int(
                torch.randint(0, 2**62, (1,), generator=self.streams.synthesis, device=self.device)
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = NoisyEmbeddingGenerator(
                self.embeddings,
                chunks=self.batch_share // self.chunk,
                noise_dim=cfg.noise_dim,
                image_size=size,
                channels=channels,
                width=cfg.generator_width,
            )
        return generator.to(self.device)

    def synthesize(self, round_index: int) -> dict[str, float]:
        cfg = self.config
        if self.label_generator is None or round_index % cfg.g_life == 0:
            self.label_generator = self._new_generator()
        loops = cfg.warmup_loops if round_index < cfg.warmup_rounds else cfg.loops
        adversarial = round_index >= cfg.warmup_rounds
        metrics: dict[str, float] = {}
        for _ in range(loops):
            metrics = self._loop(self.label_generator, adversarial)
        return metrics

    def _loop(self, generator: NoisyEmbeddingGenerator, adversarial: bool) -> dict[str, float]:
        cfg = self.config
        per_class = self.batch_share // self.num_classes
        classes = torch.arange(self.num_classes, device=self.device).repeat(per_class)
        order = torch.randperm(
            classes.numel(), generator=self.streams.synthesis, device=self.device
        )
        targets = classes[order]
        generator.reset_noise(self.streams.synthesis)
        generator.train()
        optimizer = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))

        def objective(
            images: Tensor, inputs: Tensor, teacher_logits: Tensor, stats: list[BNLayerStats]
        ) -> tuple[Tensor, Tensor]:
            del images
            loss_bn = self.bn_loss(stats)
            loss_task = F.cross_entropy(teacher_logits, targets)
            loss_adv = torch.zeros((), device=self.device)
            if adversarial and cfg.adv_weight > 0:
                with self.precision.autocast():
                    student_logits = self.student(inputs).float()
                loss_adv = adversarial_kl(student_logits, teacher_logits, reduction="mean")
            loss = cfg.bn_weight * loss_bn + cfg.oh_weight * loss_task + cfg.adv_weight * loss_adv
            return loss, torch.stack([loss, loss_bn, loss_task, loss_adv])

        with frozen_weights(self.student):
            result = invert(
                cfg.g_steps,
                lambda: generator(targets),
                objective,
                optimizer,
                teacher=self.teacher,
                model_input=self.model_input,
                augment=self.augment,
                generator=self.streams.synthesis,
                precision=self.precision,
                step_precision=self.synthesis_precision,
                track_stats=True,
                student=self.student,
            )
        read = torch.cat([result.best_parts, result.skipped.float()[None]]).tolist()
        if read[-1] == cfg.g_steps:
            raise NonFiniteLossError(
                f"all {cfg.g_steps} generator steps of this loop had a non-finite loss or "
                "gradient; no batch was added to the pool"
            )
        self.bn_loss.update(result.last_stats)
        images = result.best_images
        with torch.no_grad(), self.precision.autocast():
            final_logits = self.teacher(self.model_input(images)).float()
        names = ("synth_loss", "synth_bn", "synth_task", "synth_adv")
        return {
            **dict(zip(names, read[:4], strict=True)),
            "synth_skipped_steps": read[-1],
            **batch_diagnostics(final_logits, targets),
            **self._add_to_pool(images, final_logits),
        }

    def _extra_state(self) -> dict[str, Any]:
        generator = self.label_generator
        return {
            **super()._extra_state(),
            "generator": None if generator is None else generator.state_dict(),
            "bn_loss": self.bn_loss.state_dict(),
            "synthesis_precision": self.synthesis_precision.state_dict(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        if state["generator"] is None:
            self.label_generator = None
        else:
            generator = self.label_generator or self._new_generator(seed=0)
            generator.load_state_dict(state["generator"])
            self.label_generator = generator
        self.bn_loss.load_state_dict(state["bn_loss"])
        self.bn_loss.to(self.device)
        self.synthesis_precision.load_state_dict(state["synthesis_precision"])


SPEC = MethodSpec(
    name="nayer",
    method_class=NAYER,
    presets={
        "paper": NAYER_100,
        "nayer-200": NAYER_200,
        "nayer-300": NAYER_300,
        "fashion-mnist": NAYER_FASHION_MNIST,
    },
    summary="NAYER (CVPR 2024): noisy layers on label embeddings, no optimised latent",
)
"""NAYER in the registry."""
