"""Training, saving and loading the teachers that ssdkd distils from.

A teacher takes **normalised** images: ``(x − mean) / std`` of images ``x`` in [0, 1],
with the per-channel ``mean``/``std`` of its training split (:attr:`Dataset.mean`,
:attr:`Dataset.std`). Both are stored in the checkpoint's metadata so that a loaded
teacher is always fed the way it was trained.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ssdkd.data import Dataset
from ssdkd.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from ssdkd.engine.evaluation import evaluate_accuracy, model_device
from ssdkd.generators import Augment, normalize
from ssdkd.models import create_model

__all__ = [
    "TEACHER_RECIPES",
    "TeacherRecipe",
    "TeacherResult",
    "load_teacher",
    "save_teacher",
    "train_teacher",
]

Schedule = Literal["cosine", "multistep"]


@dataclass(frozen=True)
class TeacherRecipe:
    """Training settings of a teacher (SGD with momentum 0.9 and a decaying learning rate).

    Attributes:
        epochs: Passes over the training split.
        lr: Initial learning rate.
        batch_size: Images per SGD step.
        weight_decay: L2 weight decay.
        schedule: ``"cosine"`` (per-step cosine annealing to 0) or ``"multistep"`` (×0.1 at
            50% and 75% of the steps, the papers' step recipe).
        crop_padding: Random-crop padding of the training augmentation (0: none).
        flip: Random horizontal flips during training.
    """

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    schedule: Schedule = "cosine"
    crop_padding: int = 0
    flip: bool = False


_CIFAR_RECIPE = TeacherRecipe(
    epochs=200, lr=0.1, batch_size=128, weight_decay=5e-4, crop_padding=4, flip=True
)

TEACHER_RECIPES: dict[str, TeacherRecipe] = {
    # Digits are not mirror-symmetric: shift by one pixel only, never flip.
    "digits": TeacherRecipe(epochs=40, lr=0.05, batch_size=32, weight_decay=5e-4, crop_padding=1),
    "mnist": TeacherRecipe(epochs=10, lr=0.05, batch_size=128, weight_decay=5e-4, crop_padding=2),
    "fashion-mnist": TeacherRecipe(
        epochs=10, lr=0.05, batch_size=128, weight_decay=5e-4, crop_padding=2, flip=True
    ),
    "cifar10": _CIFAR_RECIPE,
    "cifar100": _CIFAR_RECIPE,
}
"""Recipe per dataset name of :data:`ssdkd.data.DATASETS` (CIFAR-10 and -100 share one).

The digits and Fashion-MNIST recipes are ssdkd's, sized for ``small_cnn`` on a few CPU
cores (docs/recipes/teachers.md has measured accuracies and times); MNIST's is
Fashion-MNIST's without flips (digits are not mirror-symmetric); the CIFAR recipe is
the usual 200-epoch SGD schedule used for the papers' teachers.
"""


@dataclass(frozen=True)
class TeacherResult:
    """What :func:`train_teacher` returns.

    Attributes:
        model: The trained model (same object as passed in), in eval mode.
        accuracy: Final top-1 accuracy on the held-out split.
        seconds: Wall time of the training and evaluation.
        history: One record per epoch: ``epoch``, ``loss`` (mean training loss),
            ``train_accuracy``, ``test_accuracy``, ``lr`` (at the epoch's end).
    """

    model: nn.Module
    accuracy: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class _EpochProgress:
    """A progress bar over epochs: tqdm when installed, else one line per epoch on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, desc="teacher", unit="epoch")

    def update(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        text = (
            f"loss {record['loss']:.3f} train {record['train_accuracy']:.2%} "
            f"test {record['test_accuracy']:.2%}"
        )
        if self.bar is None:
            print(f"epoch {int(record['epoch'])}: {text}", file=sys.stderr, flush=True)
        else:
            self.bar.set_postfix_str(text)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    milestones = [math.ceil(0.5 * total_steps), math.ceil(0.75 * total_steps)]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)


def train_teacher(
    model: nn.Module,
    dataset: Dataset,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    schedule: Schedule = "cosine",
    momentum: float = 0.9,
    crop_padding: int = 0,
    flip: bool = False,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TeacherResult:
    """Train ``model`` on ``dataset`` from its current weights with SGD, then evaluate it.

    The model sees ``normalize(augment(x), dataset.mean, dataset.std)``; the learning rate
    is updated every step. Shuffling and augmentation draw from a generator seeded with
    ``seed``; the initial weights are the caller's (seed the global generator before
    building the model for a fully reproducible run).

    Args:
        model: A classifier for ``dataset.image_shape`` with ``dataset.num_classes`` logits.
        dataset: Training and held-out data.
        epochs: Passes over the training split.
        lr: Initial learning rate.
        batch_size: Images per step (the last, smaller batch of an epoch is dropped when
            it would hold a single image, which BatchNorm cannot train on).
        weight_decay: L2 weight decay.
        schedule: ``"cosine"`` or ``"multistep"`` (see :class:`TeacherRecipe`).
        momentum: SGD momentum.
        crop_padding: Random-crop padding (0: no cropping).
        flip: Random horizontal flips.
        seed: Seed of shuffling and augmentation.
        device: Where to train (default: the model's device); the model is moved there.
        progress: Show a progress bar (tqdm if installed, else lines on stderr).

    Returns:
        A :class:`TeacherResult`; the model is left in eval mode.

    Examples:
        >>> from ssdkd.data import Dataset, channel_stats
        >>> from ssdkd.models import create_model
        >>> x = torch.rand(32, 1, 8, 8)
        >>> y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
        >>> data = Dataset("toy", x, y, x, y, 2, *channel_stats(x))
        >>> net = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
        >>> result = train_teacher(net, data, epochs=2, lr=0.05, batch_size=16,
        ...                        weight_decay=0.0, progress=False)
        >>> len(result.history), 0.0 <= result.accuracy <= 1.0
        (2, True)
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"Expected `{name}` to be a positive integer, got {value}")
    if not (math.isfinite(lr) and lr > 0 and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(
            f"Expected finite `lr` > 0 and `weight_decay` >= 0, got {lr} and {weight_decay}"
        )
    if schedule not in ("cosine", "multistep"):
        raise ValueError(f"Expected `schedule` to be 'cosine' or 'multistep', got {schedule!r}")
    start = time.perf_counter()
    target = model_device(model) if device is None else torch.device(device)
    model.to(target)
    x_train = dataset.x_train.to(target)
    y_train = dataset.y_train.to(target)
    augment = Augment(crop_padding=crop_padding, flip=flip)
    generator = torch.Generator().manual_seed(seed)
    count = x_train.shape[0]
    steps_per_epoch = count // batch_size + (1 if count % batch_size > 1 else 0)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = _scheduler(optimizer, schedule, epochs * steps_per_epoch)
    history: list[dict[str, float]] = []
    bar = _EpochProgress(epochs, progress)
    try:
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(count, generator=generator).to(target)
            loss_sum = torch.zeros((), device=target)
            correct = torch.zeros((), dtype=torch.int64, device=target)
            seen = 0
            for step in range(steps_per_epoch):
                index = order[step * batch_size : (step + 1) * batch_size]
                images = augment(x_train[index], generator=generator)
                logits = model(normalize(images, dataset.mean, dataset.std))
                loss = F.cross_entropy(logits, y_train[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * index.numel()
                correct += (logits.argmax(dim=1) == y_train[index]).sum()
                seen += index.numel()
            record = {
                "epoch": float(epoch + 1),
                "loss": float(loss_sum) / seen,
                "train_accuracy": int(correct) / seen,
                "test_accuracy": evaluate_accuracy(
                    model,
                    dataset.x_test,
                    dataset.y_test,
                    device=target,
                    normalize=(dataset.mean, dataset.std),
                ),
                "lr": float(optimizer.param_groups[0]["lr"]),
            }
            history.append(record)
            bar.update(record)
    finally:
        bar.close()
    model.eval()
    return TeacherResult(
        model=model,
        accuracy=history[-1]["test_accuracy"],
        seconds=time.perf_counter() - start,
        history=history,
    )


def save_teacher(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    model_name: str,
    dataset: Dataset,
    accuracy: float,
    in_channels: int,
    image_size: int,
) -> None:
    """Write a teacher checkpoint atomically.

    The file holds ``{"kind": "teacher", "state_dict": ..., "meta": {...}}`` with ``meta``
    keys ``model``, ``dataset``, ``num_classes``, ``in_channels``, ``image_size``,
    ``mean``, ``std`` (lists of floats: the normalisation the teacher expects) and
    ``accuracy``; it loads with ``torch.load(path, weights_only=True)``.

    Args:
        path: Destination file (parent directories are created).
        model: The trained teacher.
        model_name: Its key in :data:`ssdkd.models.MODELS` (used to rebuild it).
        dataset: The data it was trained on (name, classes, mean and std are stored).
        accuracy: Held-out accuracy to record.
        in_channels: Input channels the model was built with.
        image_size: Input side the model was built with.
    """
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    meta = {
        "model": model_name,
        "dataset": dataset.name,
        "num_classes": int(dataset.num_classes),
        "in_channels": int(in_channels),
        "image_size": int(image_size),
        "mean": [float(m) for m in dataset.mean],
        "std": [float(s) for s in dataset.std],
        "accuracy": float(accuracy),
    }
    atomic_save({"kind": "teacher", "state_dict": state, "meta": meta}, path)


_META_KEYS = ("model", "dataset", "num_classes", "in_channels", "image_size", "mean", "std")


def load_teacher(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a teacher written by :func:`save_teacher`.

    Args:
        path: The checkpoint file.

    Returns:
        ``(model, meta)``: the model in eval mode on the CPU, and the metadata dict. Feed
        the model ``normalize(x, meta["mean"], meta["std"])``.

    Raises:
        CheckpointError: The file is missing, corrupt, not a teacher checkpoint, or its
            weights do not fit the recorded architecture (the message names the file).
    """
    state = load_checkpoint(path, kind="teacher")
    meta = state.get("meta")
    weights = state.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(weights, dict):
        raise CheckpointError(f"teacher checkpoint {str(path)!r} lacks 'meta' or 'state_dict'")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise CheckpointError(
            f"teacher checkpoint {str(path)!r} metadata lacks {', '.join(missing)}"
        )
    try:
        model = create_model(
            str(meta["model"]),
            num_classes=int(meta["num_classes"]),
            in_channels=int(meta["in_channels"]),
            image_size=int(meta["image_size"]),
        )
        model.load_state_dict(weights)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"teacher checkpoint {str(path)!r} does not match its recorded model: {exc}"
        ) from exc
    model.eval()
    return model, meta
