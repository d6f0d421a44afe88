"""The run directory's figures: diagnostics panels, labelled samples, no matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ssdkd.engine import atomic_save
from ssdkd.engine.plots import (
    DIAGNOSTIC_PANELS,
    LABELS,
    _diagnostic_panels,
    plot_accuracy_vs_time,
    plot_diagnostics,
    plot_run,
    plot_samples,
    teacher_accuracy_of,
)
from ssdkd.engine.records import MetricsLog
from ssdkd.engine.runner import run_rounds
from tests.engine.scripted import GOOD, ScriptedMethod, eval_data

HISTORY = [
    {
        "round": r,
        "overall_seconds": float(r),
        "accuracy": 0.2 * r,
        "kd_loss": None if r == 1 else 1.0 / r,
        "kl": None if r == 1 else 2.0 / r,
        "data_class_entropy": 0.9,
        "eval_top_class_share": 0.3,
    }
    for r in (1, 2, 3)
]


def _write_run(directory: Path, history: list[dict[str, Any]]) -> None:
    log = MetricsLog(directory, history)
    log.close()


def test_only_the_panels_with_recorded_keys_are_drawn() -> None:
    panels = _diagnostic_panels(HISTORY)
    titles = [title for title, _ in panels]
    assert titles == ["class entropy (1 = balanced)", "KD loss", "student on evaluation data"]
    curves = dict(panels)["KD loss"]
    assert [(key, rounds) for key, rounds, _ in curves] == [("kd_loss", [2, 3]), ("kl", [2, 3])]


def test_every_diagnostic_key_the_methods_report_has_a_panel() -> None:
    drawn = {key for _, keys in DIAGNOSTIC_PANELS for key in keys}
    assert {
        "synth_class_entropy",
        "data_class_entropy",
        "teacher_confidence",
        "target_agreement",
        "phi_mean",
        "weight_mean",
        "weight_ess",
        "kd_loss",
        "kl",
        "eval_top_class_share",
    } <= drawn


def test_plot_diagnostics_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plot_diagnostics(HISTORY, tmp_path / "diagnostics.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plot_diagnostics_without_any_diagnostic_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one of the keys"):
        plot_diagnostics([{"round": 1, "overall_seconds": 1.0}], tmp_path / "d.png")


def test_plot_run_writes_diagnostics_only_when_recorded(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    with_keys, without = tmp_path / "with", tmp_path / "without"
    _write_run(with_keys, HISTORY)
    _write_run(without, [{"round": 1, "overall_seconds": 1.0, "accuracy": None}])
    assert with_keys / "diagnostics.png" in plot_run(with_keys)
    assert (with_keys / "diagnostics.png").is_file()
    assert plot_run(without) == [without / "accuracy.png"]


def test_a_run_directory_gets_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    method = ScriptedMethod(students={1: GOOD}, synth_metrics={2: {"phi_mean": 0.1}})
    run_rounds(method, eval_data=eval_data(), run_dir=tmp_path, progress=False)
    for name in ("accuracy.png", "diagnostics.png", "samples.png", "buffer_histograms.png"):
        assert (tmp_path / name).is_file(), name


def test_samples_are_titled_with_the_teacher_class_and_confidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    titles: list[str] = []
    real_set_title = Axes.set_title

    def record_title(self: Axes, label: str, *args: Any, **kwargs: Any) -> Any:
        titles.append(label)
        return real_set_title(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", record_title)
    logits = torch.log(torch.tensor([[0.97, 0.01, 0.01, 0.01], [0.1, 0.1, 0.2, 0.6]]))
    plot_samples(torch.rand(2, 1, 4, 4), tmp_path / "samples.png", teacher_logits=logits)
    assert titles == ["0 0.97", "3 0.60"]


def test_samples_with_logits_of_another_count_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`teacher_logits` of shape \(3, K\)"):
        plot_samples(torch.rand(3, 1, 4, 4), tmp_path / "s.png", teacher_logits=torch.zeros(2, 4))


def test_plot_run_synthetic_file_labels_the_samples(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write_run(tmp_path, HISTORY)
    atomic_save(
        {
            "kind": "synthetic",
            "images": torch.rand(5, 1, 4, 4),
            "teacher_logits": torch.randn(5, 4),
            "num_classes": 4,
        },
        tmp_path / "synthetic.pt",
    )
    assert {p.name for p in plot_run(tmp_path)} == {
        "accuracy.png",
        "diagnostics.png",
        "samples.png",
        "buffer_histograms.png",
    }


def test_without_matplotlib_plots_say_how_to_install_it_and_runs_still_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    method = ScriptedMethod(students={1: GOOD})
    result = run_rounds(method, eval_data=eval_data(), run_dir=tmp_path, progress=False)
    assert len(result.history) == 4
    assert (tmp_path / "synthetic.pt").is_file()
    assert not list(tmp_path.glob("*.png"))
    # Regression: it advised pip install "ssdkd[plot]", which works only inside a clone.
    with pytest.raises(ImportError, match=r"pip install matplotlib \(in a clone of ssdkd"):
        plot_run(tmp_path)


def test_a_mean_weight_of_one_throughout_is_not_drawn_and_keys_have_words() -> None:
    """Regression: weight_mean, 1 by construction under the "mean" normalisation, took a
    curve, and the legends showed raw record keys."""
    history = [{"round": r, "weight_mean": 1.0, "weight_ess": 0.9, "phi_mean": 1.1} for r in (1, 2)]
    curves = dict(_diagnostic_panels(history))["SSD-KD weights"]
    assert [key for key, _, _ in curves] == ["phi_mean", "weight_ess"]
    varying = [{"round": 1, "weight_mean": 0.6}, {"round": 2, "weight_mean": 0.7}]
    assert dict(_diagnostic_panels(varying))["SSD-KD weights"][0][0] == "weight_mean"
    assert {key for _, keys in DIAGNOSTIC_PANELS for key in keys} <= set(LABELS)


@pytest.mark.parametrize("x", ["seconds", "round", "kd_steps"])
def test_accuracy_is_drawn_against_time_rounds_or_steps(tmp_path: Path, x: str) -> None:
    pytest.importorskip("matplotlib")
    history = [{**r, "kd_steps": 10 * r["round"]} for r in HISTORY]
    out = plot_accuracy_vs_time({"run": history}, tmp_path / "a.png", x=x, teacher_accuracy=0.9)
    assert out.stat().st_size > 0
    with pytest.raises(ValueError, match=r"`x` to be one of \['seconds', 'round', 'kd_steps'\]"):
        plot_accuracy_vs_time({"run": history}, tmp_path / "b.png", x="epochs")


def test_the_teacher_accuracy_is_read_from_the_command_record(tmp_path: Path) -> None:
    assert teacher_accuracy_of(tmp_path) is None
    (tmp_path / "command.json").write_text('{"teacher_accuracy": 0.91}')
    assert teacher_accuracy_of(tmp_path) == 0.91


def test_several_runs_are_compared_in_one_figure_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `ssdkd plot` took one run, so runs could not be compared."""
    pytest.importorskip("matplotlib")
    from ssdkd.cli import main

    for name in ("a", "b"):
        _write_run(tmp_path / name, HISTORY)
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert main(["plot", *runs]) == 1
    assert "Expected --out PNG" in capsys.readouterr().err
    assert main(["plot", *runs, "--out", str(tmp_path / "both.png"), "--x", "round"]) == 0
    assert (tmp_path / "both.png").stat().st_size > 0
