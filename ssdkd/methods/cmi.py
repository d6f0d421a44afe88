"""CMI (Fang et al., IJCAI 2021): contrastive model inversion, its config, presets and method.

Each synthesis call inverts the teacher with a freshly initialised generator and fresh
latents, optimised together; beside DeepInversion's terms, a contrastive term asks a
local view of each image to find its own global view among the global views of earlier
images (a memory bank), which pushes every new batch away from what the pool holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdkd.generators import Augment, DCGANGenerator
from ssdkd.hooks import BNLayerStats, batchnorm_layers
from ssdkd.losses import adversarial_kl, bn_stat_loss, info_nce
from ssdkd.methods.base import MethodSpec, PoolMethod
from ssdkd.methods.budgets import FASHION_BUDGET
from ssdkd.methods.common import frozen_weights
from ssdkd.methods.config import DistillationFields, check_non_negative, check_positive
from ssdkd.methods.diagnostics import batch_diagnostics
from ssdkd.methods.inversion import invert
from ssdkd.methods.precision import NonFiniteLossError, Precision
from ssdkd.sampling import FeatureBank

__all__ = ["CMI", "CMI_FASHION_MNIST", "CMI_PAPER", "SPEC", "CMIConfig", "random_resized_crop"]


@dataclass(frozen=True)
class CMIConfig(DistillationFields):
    """CMI. The defaults are the paper's CIFAR-10 settings (WRN-40-2 → WRN-16-1).

    A round is one synthesis call (``g_steps`` steps of a fresh generator and latents),
    whose best batch joins the pool, then ``kd_steps`` student steps on the pool.
    """

    rounds: int = 40
    """Epochs: synthesis calls, each followed by ``kd_steps`` student steps."""
    warmup_rounds: int = 0
    kd_steps: int = 2000
    kd_batch_size: int = 128
    temperature: float = 20.0
    student_lr: float = 0.1
    synthesis_batch_size: int = 256
    """Images per synthesis call."""
    g_steps: int = 200
    """Adam steps of each synthesis call."""
    lr_g: float = 1e-3
    """Adam learning rate of the generator, the latents and the projection head."""
    latent_dim: int = 256
    """Dimension of the latent z."""
    generator_width: int = 64
    """DCGAN width of the generator."""
    bn_weight: float = 1.0
    """Weight of the BN-statistics loss."""
    oh_weight: float = 0.5
    """Weight of the teacher's cross-entropy on the random targets."""
    adv_weight: float = 0.5
    """Weight of the adversarial term −mean(𝟙[agree]·KL(p_T ‖ p_S))."""
    cr_weight: float = 0.8
    """Weight of the contrastive term (InfoNCE)."""
    cr_temperature: float = 0.1
    """τ of the InfoNCE term."""
    bank_size: int = 40960
    """Feature pairs the memory bank keeps."""
    negatives: int = 4096
    """Negatives drawn from the bank per step (fewer while it holds fewer)."""
    head_dim: int = 256
    """Output dimension of the projection head."""
    local_scale: float = 0.25
    """Smallest area share of a local view (a random square crop resized back)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(
            self,
            "synthesis_batch_size",
            "g_steps",
            "lr_g",
            "latent_dim",
            "generator_width",
            "cr_temperature",
            "bank_size",
            "head_dim",
        )
        check_non_negative(self, "bn_weight", "oh_weight", "adv_weight", "cr_weight", "negatives")
        if not 0.0 < self.local_scale <= 1.0:
            raise ValueError(f"Expected `local_scale` in (0, 1], got {self.local_scale!r}")


CMI_PAPER = CMIConfig()
"""The paper's CIFAR-10 setting: 40 epochs of one 256-image synthesis call (200 steps,
Adam 1e-3) and 2,000 KD steps at T = 20; BN/one-hot/adversarial/contrastive weights
1/0.5/0.5/0.8, τ 0.1, a 40,960-pair bank, 4,096 negatives."""
CMI_FASHION_MNIST = CMIConfig(
    **{**FASHION_BUDGET, "warmup_rounds": 0},
    rounds=15,
    kd_steps=300,
    synthesis_batch_size=128,
    g_steps=120,
    lr_g=2e-3,
    generator_width=32,
    bank_size=8192,
    negatives=2048,
)
"""CMI at 28×28: 15 calls of 128 images (120 Adam steps at 2e-3 of a width-32 generator)
and 300 KD steps each, with the student budget of the other 28×28 presets (batch 128,
T = 4, SGD 0.01, crop padding 2); a bank of 8,192 pairs (it keeps all 1,920 images'
pairs) and 2,048 negatives. Chosen on a validation split (84.9% there, against 84.5% for
30 calls of 60 steps at the same number of generator and KD steps); 120 steps instead of
200 and width 32 instead of 64 keep the run at about 12 minutes on 2 CPU cores (200
steps at width 64 took about two minutes a call). Loss weights and τ as :data:`CMI_PAPER`."""


def random_resized_crop(
    images: Tensor, *, min_scale: float, generator: torch.Generator | None = None
) -> Tensor:
    """A random square crop of each image covering a share in [``min_scale``, 1] of its
    area, resized back to the image's size (bilinear); differentiable in ``images``.

    Examples:
        >>> x = torch.rand(2, 1, 8, 8)
        >>> random_resized_crop(x, min_scale=0.25).shape
        torch.Size([2, 1, 8, 8])
        >>> torch.allclose(random_resized_crop(x, min_scale=1.0), x, atol=1e-6)
        True
    """
    if not 0.0 < min_scale <= 1.0:
        raise ValueError(f"Expected `min_scale` in (0, 1], got {min_scale!r}")
    batch = images.shape[0]
    device = images.device
    area = min_scale + (1.0 - min_scale) * torch.rand(batch, generator=generator, device=device)
    side = area.sqrt()  # the crop's side as a share of the image's
    offset = 2.0 * torch.rand(batch, 2, generator=generator, device=device) - 1.0
    shift = (1.0 - side)[:, None] * offset
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", align_corners=False)


class _ChannelMeans:
    """Records, for every forward pass of ``model``, the per-sample channel means of each
    BatchNorm layer's input; :meth:`take` returns them concatenated, ``(B, Σ C_l)``."""

    def __init__(self, model: nn.Module) -> None:
        self.layers: list[nn.Module] = [layer for _, layer in batchnorm_layers(model)]
        self.recorded: list[Tensor] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[_ChannelMeans]:
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            del module
            x = args[0]
            self.recorded.append(x.float().mean(dim=tuple(range(2, x.dim()))))

        handles = [layer.register_forward_pre_hook(hook) for layer in self.layers]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self.recorded.clear()

    def take(self) -> Tensor:
        """The features of the last forward pass; clears the record."""
        features = torch.cat(self.recorded[-len(self.layers) :], dim=1)
        self.recorded.clear()
        return features


class CMI(PoolMethod):
    """CMI (Fang et al., IJCAI 2021): contrastive model inversion into a pool.

    Each round re-initialises a DCGAN generator (from the synthesis stream) and draws
    fresh latents z and uniform targets y, then runs ``g_steps`` Adam steps on the
    generator, z and the projection head of
    ``bn·L_BN + oh·CE(T(x_g), y) − adv·mean(𝟙[agree]·KL(p_T ‖ p_S)) + cr·L_cr`` where
    x_g is a global view (random crop with padding and a flip) and
    L_cr = InfoNCE(h(f(x_l)), h(f(x_g)), h(negatives)) with f the per-sample channel means
    of every teacher BatchNorm input, h the projection head, x_l a local view (a random
    resized crop) and the negatives global-view features drawn from the memory bank. The
    lowest-loss batch joins the pool and its (local, global) features the bank; KD steps
    draw uniformly from the pool.

    The head and the bank persist across rounds (they are checkpointed); the head's Adam
    state is that of each round's optimiser. The teacher needs BatchNorm layers. With
    several processes each rank inverts its own ``synthesis_batch_size / N`` images with
    its own generator, head and bank into its own pool, as DeepInversion's ranks do.

    See :class:`~ssdkd.methods.base.DistillationMethod` for the arguments.
    """

    config_class = CMIConfig
    config: CMIConfig

    def __init__(
        self, teacher: nn.Module, student: nn.Module, config: CMIConfig, **kwargs: Any
    ) -> None:
        super().__init__(teacher, student, config, **kwargs)
        self.batch_share = self.parallel.share(config.synthesis_batch_size, "synthesis_batch_size")
        self.means = _ChannelMeans(self.teacher)
        features = sum(cast(int, layer.num_features) for layer in self.means.layers)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.head = nn.Sequential(
                nn.Linear(features, features),
                nn.ReLU(),
                nn.Linear(features, config.head_dim),
            ).to(self.device)
        self.bank = FeatureBank(
            config.bank_size, device=self.device, generator=self.streams.synthesis
        )
        self.augment = Augment(crop_padding=config.crop_padding, flip=config.flip)
        # The synthesis's own instance: its loss needs its own fp16 gradient scale.
        self.synthesis_precision = Precision(self.precision.mode, self.device)

    def synthesize(self, round_index: int) -> dict[str, float]:
        cfg = self.config
        channels, size, _ = self.image_shape
        seed = int(
            torch.randint(0, 2**62, (1,), generator=self.streams.synthesis, device=self.device)
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = DCGANGenerator(
                latent_dim=cfg.latent_dim,
                image_size=size,
                channels=channels,
                width=cfg.generator_width,
            ).to(self.device)
        z = torch.randn(
            self.batch_share,
            cfg.latent_dim,
            generator=self.streams.synthesis,
            device=self.device,
        ).requires_grad_()
        targets = torch.randint(
            0,
            self.num_classes,
            (self.batch_share,),
            generator=self.streams.synthesis,
            device=self.device,
        )
        optimizer = torch.optim.Adam(
            [*generator.parameters(), z, *self.head.parameters()], lr=cfg.lr_g, betas=(0.5, 0.999)
        )
        adversarial = round_index >= cfg.warmup_rounds
        with frozen_weights(self.student), self.means.recording():
            result = invert(
                cfg.g_steps,
                lambda: generator(z),
                self._objective(targets, adversarial),
                optimizer,
                teacher=self.teacher,
                model_input=self.model_input,
                augment=self.augment,
                generator=self.streams.synthesis,
                precision=self.precision,
                step_precision=self.synthesis_precision,
                student=self.student,
            )
            images = result.best_images
            with torch.no_grad(), self.precision.autocast():
                final_logits = self.teacher(self.model_input(images)).float()
                global_features = self.means.take()
                local = random_resized_crop(
                    images, min_scale=cfg.local_scale, generator=self.streams.synthesis
                )
                self.teacher(self.model_input(local))
                local_features = self.means.take()
        read = torch.cat([result.best_parts, result.skipped.float()[None]]).tolist()
        if read[-1] == cfg.g_steps:
            raise NonFiniteLossError(
                f"all {cfg.g_steps} generator steps of this call had a non-finite loss or "
                "gradient; no batch was added to the pool"
            )
        self.bank.push(local=local_features, global_=global_features)
        names = ("synth_loss", "synth_bn", "synth_task", "synth_adv", "synth_cr")
        return {
            **dict(zip(names, read[:5], strict=True)),
            "synth_skipped_steps": read[-1],
            **batch_diagnostics(final_logits, targets),
            **self._add_to_pool(images, final_logits),
        }

    def _objective(self, targets: Tensor, adversarial: bool) -> Any:
        cfg = self.config

        def objective(
            images: Tensor, inputs: Tensor, teacher_logits: Tensor, stats: list[BNLayerStats]
        ) -> tuple[Tensor, Tensor]:
            global_features = self.means.take()
            zero = torch.zeros((), device=self.device)
            loss_bn = bn_stat_loss(stats)
            loss_task = F.cross_entropy(teacher_logits, targets)
            loss_adv = zero
            if adversarial and cfg.adv_weight > 0:
                with self.precision.autocast():
                    student_logits = self.student(inputs).float()
                loss_adv = adversarial_kl(student_logits, teacher_logits, reduction="mean")
            loss_cr = zero
            if cfg.cr_weight > 0:
                local = random_resized_crop(
                    images, min_scale=cfg.local_scale, generator=self.streams.synthesis
                )
                with self.precision.autocast():
                    self.teacher(self.model_input(local))
                local_features = self.means.take()
                count = min(cfg.negatives, len(self.bank))
                stored = self.bank.sample(count)["global_"] if count else global_features[:0]
                loss_cr = info_nce(
                    self.head(local_features),
                    self.head(global_features),
                    self.head(stored),
                    temperature=cfg.cr_temperature,
                    reduction="mean",
                )
            loss = (
                cfg.bn_weight * loss_bn
                + cfg.oh_weight * loss_task
                + cfg.adv_weight * loss_adv
                + cfg.cr_weight * loss_cr
            )
            return loss, torch.stack([loss, loss_bn, loss_task, loss_adv, loss_cr])

        return objective

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "head": self.head.state_dict(),
            "bank": self.bank.state_dict(),
            "synthesis_precision": self.synthesis_precision.state_dict(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.head.load_state_dict(state["head"])
        self.bank.load_state_dict(state["bank"])
        self.synthesis_precision.load_state_dict(state["synthesis_precision"])


SPEC = MethodSpec(
    name="cmi",
    method_class=CMI,
    presets={"paper": CMI_PAPER, "fashion-mnist": CMI_FASHION_MNIST},
    summary="CMI (IJCAI 2021): contrastive inversion with a fresh generator per batch",
)
"""CMI in the registry."""
