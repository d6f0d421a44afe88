"""Teacher training, checkpoints and accuracy evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ssdkd.data import DATASETS, Dataset, channel_stats
from ssdkd.engine.checkpoint import CheckpointError, atomic_save
from ssdkd.engine.evaluation import evaluate_accuracy
from ssdkd.engine.teacher import (
    TEACHER_RECIPES,
    TeacherRecipe,
    load_teacher,
    save_teacher,
    train_teacher,
)
from ssdkd.generators import normalize
from ssdkd.models import create_model


def toy_dataset(n: int = 64) -> Dataset:
    """Two classes told apart by the brightness of the left half of an 8×8 image."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=generator) * 0.5
    y = torch.arange(n) % 2
    x[y == 1, :, :, :4] += 0.5
    half = n // 2
    return Dataset("toy", x[:half], y[:half], x[half:], y[half:], 2, *channel_stats(x[:half]))


def test_recipes_cover_every_dataset() -> None:
    assert set(TEACHER_RECIPES) == set(DATASETS)
    assert all(isinstance(r, TeacherRecipe) for r in TEACHER_RECIPES.values())
    assert TEACHER_RECIPES["cifar10"] == TEACHER_RECIPES["cifar100"]
    assert not TEACHER_RECIPES["digits"].flip


@pytest.mark.parametrize("schedule", ["cosine", "multistep"])
def test_train_teacher_learns_and_reports_history(schedule: str) -> None:
    torch.manual_seed(0)
    model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
    data = toy_dataset()
    result = train_teacher(
        model,
        data,
        epochs=5,
        lr=0.05,
        batch_size=8,
        weight_decay=0.0,
        schedule=schedule,
        crop_padding=1,
        progress=False,
    )
    assert result.model is model
    assert not model.training
    assert result.accuracy >= 0.9
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert result.history[-1]["test_accuracy"] == result.accuracy
    assert result.history[-1]["lr"] < 0.05
    assert result.seconds > 0


def test_train_teacher_is_reproducible_from_seeds() -> None:
    def run() -> dict[str, torch.Tensor]:
        torch.manual_seed(1)
        model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
        train_teacher(
            model,
            toy_dataset(),
            epochs=2,
            lr=0.05,
            batch_size=8,
            weight_decay=1e-4,
            crop_padding=1,
            flip=True,
            seed=3,
            progress=False,
        )
        return model.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_train_teacher_prints_lines_without_tqdm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
    train_teacher(model, toy_dataset(), epochs=2, lr=0.05, batch_size=16, weight_decay=0.0)
    assert capsys.readouterr().err.count("epoch ") == 2


def test_train_teacher_rejects_bad_settings() -> None:
    model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="epochs"):
        train_teacher(model, toy_dataset(), epochs=0, lr=0.1, batch_size=8, weight_decay=0.0)
    with pytest.raises(ValueError, match="schedule"):
        train_teacher(
            model,
            toy_dataset(),
            epochs=1,
            lr=0.1,
            batch_size=8,
            weight_decay=0.0,
            schedule="linear",
        )  # type: ignore[arg-type]
    for lr, decay in ((float("nan"), 0.0), (0.1, float("nan")), (float("inf"), 0.0)):
        # NaN passed `lr <= 0`; a NaN learning rate turns the whole model NaN.
        with pytest.raises(ValueError, match="finite `lr`"):
            train_teacher(model, toy_dataset(), epochs=1, lr=lr, batch_size=8, weight_decay=decay)


def test_save_and_load_round_trip_with_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = toy_dataset()
    model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
    model(torch.randn(4, 1, 8, 8))  # non-trivial BN running statistics
    path = tmp_path / "sub" / "teacher.pt"
    save_teacher(
        path, model, model_name="tiny_cnn", dataset=data, accuracy=0.75, in_channels=1, image_size=8
    )
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "teacher"
    assert raw["meta"] == {
        "model": "tiny_cnn",
        "dataset": "toy",
        "num_classes": 2,
        "in_channels": 1,
        "image_size": 8,
        "mean": list(data.mean),
        "std": list(data.std),
        "accuracy": 0.75,
    }
    loaded, meta = load_teacher(path)
    assert meta["accuracy"] == 0.75
    assert not loaded.training
    model.eval()
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(
        loaded(normalize(x, meta["mean"], meta["std"])), model(normalize(x, data.mean, data.std))
    )


def test_load_teacher_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pt"
    with pytest.raises(CheckpointError, match=r"teacher.pt"):
        load_teacher(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"teacher.pt.*corrupt"):
        load_teacher(path)
    atomic_save({"kind": "run"}, path)
    with pytest.raises(CheckpointError, match="kind 'run'"):
        load_teacher(path)
    atomic_save({"kind": "teacher", "state_dict": {}, "meta": {"model": "tiny_cnn"}}, path)
    with pytest.raises(CheckpointError, match="lacks dataset, num_classes"):
        load_teacher(path)
    model = create_model("tiny_cnn", num_classes=2, in_channels=1, image_size=8)
    save_teacher(
        path,
        model,
        model_name="small_cnn",
        dataset=toy_dataset(),
        accuracy=0.5,
        in_channels=1,
        image_size=8,
    )
    with pytest.raises(CheckpointError, match="does not match"):
        load_teacher(path)


def test_evaluate_accuracy_counts_and_restores_training_flag() -> None:
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(2))
    model.train()
    x = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 2.0]]], [[[2.0, 0.0]]], [[[0.0, 2.0]]]])
    y = torch.tensor([0, 1, 1, 1])
    assert evaluate_accuracy(model, x, y, batch_size=3) == 0.75
    assert model.training
    assert torch.equal(model[1].running_mean, torch.zeros(2))  # eval mode: stats untouched
    with pytest.raises(ValueError, match="same, non-zero"):
        evaluate_accuracy(model, x, y[:2])


def test_evaluate_accuracy_normalises_each_batch() -> None:
    # logits = x + (1, 0): dividing x by std 4 lets the bias win, so every prediction is 0.
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 2.0]]], [[[2.0, 0.0]]], [[[0.0, 2.0]]]])
    y = torch.tensor([0, 1, 1, 1])
    assert evaluate_accuracy(model, x, y) == 0.75
    assert evaluate_accuracy(model, x, y, batch_size=1, normalize=((0.0,), (4.0,))) == 0.25
