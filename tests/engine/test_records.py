"""Metrics file, TensorBoard mirroring and the progress display."""

from __future__ import annotations

import builtins
import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ssdkd.engine.records import MetricsLog, Progress, read_metrics


class FakeWriter:
    """Stands in for tensorboard's SummaryWriter and records what it is given."""

    instances: ClassVar[list[FakeWriter]] = []

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        FakeWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_metrics_log_rewrites_history_then_appends(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"round": 1}\n{"round": 2}\n{"round": 3}\n')
    log = MetricsLog(tmp_path, history=[{"round": 1}, {"round": 2}])
    log.write({"round": 3, "accuracy": 0.5})
    log.close()
    assert read_metrics(tmp_path) == [{"round": 1}, {"round": 2}, {"round": 3, "accuracy": 0.5}]


def test_numbers_are_mirrored_to_tensorboard_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    log = MetricsLog(tmp_path)
    log.write({"round": 2, "accuracy": 0.75, "kd_loss": None, "method": "x"})
    log.close()
    writer = FakeWriter.instances[-1]
    assert writer.log_dir == str(tmp_path / "tensorboard")
    assert writer.scalars == [("accuracy", 0.75, 2)]
    assert writer.closed
    assert writer.purge_step is None


def test_a_resumed_log_hides_the_tensorboard_events_it_will_write_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prevents duplicated TensorBoard events on resume: rounds after the checkpoint that
    the crashed run had already logged were written a second time."""
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    MetricsLog(tmp_path, history=[{"round": 1}, {"round": 2}]).close()
    assert FakeWriter.instances[-1].purge_step == 3


def test_read_metrics_of_a_non_run_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run directory"):
        read_metrics(tmp_path)


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def refuse_tqdm(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_tqdm)


@pytest.mark.usefixtures("no_tqdm")
def test_progress_without_tqdm_prints_one_line_per_round(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Progress(2, description="SSDKD") as bar:
        bar.update({"round": 1, "accuracy": 0.5, "images_synthesized": 128})
    err = capsys.readouterr().err
    assert "SSDKD round 1/2" in err
    assert "acc=0.5" in err
    assert "images=128" in err


@pytest.mark.usefixtures("no_tqdm")
def test_progress_shows_kl_and_the_collapse_diagnostics_compactly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Progress(2) as bar:
        bar.update(
            {
                "round": 1,
                "accuracy": 0.51234,
                "kd_loss": 0.9,
                "kl": 0.25,
                "eval_top_class_share": 0.3,
                "data_class_entropy": 0.875,
                "synth_class_entropy": 0.5,
                "teacher_confidence": 0.9,
            }
        )
        bar.update({"round": 2, "kd_loss": 0.75, "synth_class_entropy": 0.5, "kl": None})
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith("round 1/2 acc=0.512 kl=0.25 top_share=0.3 data_H=0.875")
    # Without kl and data_class_entropy, the optimised loss and the batch's entropy.
    assert second.endswith("round 2/2 kd_loss=0.75 synth_H=0.5")


@pytest.mark.usefixtures("no_tqdm")
def test_progress_writes_a_message_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(2) as bar:
        bar.write("warning: look")
    assert capsys.readouterr().err == "warning: look\n"


def test_progress_with_tqdm_writes_a_message_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("tqdm")
    with Progress(2) as bar:
        bar.write("warning: look")
    assert "warning: look" in capsys.readouterr().err


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_progress_warn_prints_the_line_and_issues_the_warning(
    tqdm_installed: bool, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    if tqdm_installed:
        pytest.importorskip("tqdm")
    else:
        request.getfixturevalue("no_tqdm")
    with Progress(2) as bar, pytest.warns(UserWarning, match="look") as caught:
        bar.warn("look", UserWarning)
    assert "warning: look" in capsys.readouterr().err
    assert caught[0].filename == __file__  # attributed to the caller of warn


def test_disabled_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(2, enabled=False) as bar:
        bar.update({"round": 1, "accuracy": 0.5})
        bar.write("warning: look")
        with pytest.warns(UserWarning, match="look"):
            bar.warn("look", UserWarning)
    assert capsys.readouterr() == ("", "")


def test_metrics_lines_are_json(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path)
    log.write({"round": 1, "accuracy": None})
    log.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"round": 1, "accuracy": None}
