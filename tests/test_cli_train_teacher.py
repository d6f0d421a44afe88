"""``ssdkd train-teacher``: end to end on digits, usage errors, help and expected errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssdkd.cli import build_parser, main
from ssdkd.engine.teacher import load_teacher


def test_train_teacher_on_digits_reaches_95_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits.pt"
    status = main(
        [
            "train-teacher",
            "--model",
            "small_cnn",
            "--dataset",
            "digits",
            "--out",
            str(out),
            "--epochs",
            "8",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert status == 0
    _model, meta = load_teacher(out)
    assert meta["accuracy"] >= 0.95
    assert meta["model"] == "small_cnn"
    assert meta["dataset"] == "digits"
    assert (meta["num_classes"], meta["in_channels"], meta["image_size"]) == (10, 1, 8)
    assert "held-out accuracy" in capsys.readouterr().out
    assert torch.load(out, weights_only=True)["kind"] == "teacher"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["train-teacher"],
        ["train-teacher", "--model", "resnet50", "--dataset", "digits", "--out", "x.pt"],
        ["train-teacher", "--model", "small_cnn", "--dataset", "kmnist", "--out", "x.pt"],
        [
            "train-teacher",
            "--model",
            "small_cnn",
            "--dataset",
            "digits",
            "--out",
            "x.pt",
            "--epochs",
            "0",
        ],
        [
            "train-teacher",
            "--model",
            "small_cnn",
            "--dataset",
            "digits",
            "--out",
            "x.pt",
            "--lr",
            "fast",
        ],
        [
            "train-teacher",
            "--model",
            "small_cnn",
            "--dataset",
            "digits",
            "--out",
            "x.pt",
            "--device",
            "toaster",
        ],
    ],
)
def test_bad_arguments_give_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "Traceback" not in err


def test_help_lists_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-teacher", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--model",
        "--dataset",
        "--data-dir",
        "--out",
        "--epochs",
        "--lr",
        "--batch-size",
        "--weight-decay",
        "--schedule",
        "--crop-padding",
        "--flip",
        "--seed",
        "--device",
        "--no-progress",
    ):
        assert option in text
    assert "(default: 0)" in text
    assert "(default: auto)" in text
    assert "digits 40" in text
    assert "fashion-mnist 10" in text


def test_missing_dataset_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "train-teacher",
            "--model",
            "small_cnn",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "t.pt"),
        ]
    )
    assert status == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssdkd: error: Fashion-MNIST not found")
    assert "\n" not in err


def test_parser_exposes_subparsers_for_more_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["train-teacher", "--model", "tiny_cnn", "--dataset", "digits", "--out", "t.pt"]
    )
    assert args.command == "train-teacher"
    assert callable(args.handler)
    assert args.epochs is None
    assert args.flip is None
