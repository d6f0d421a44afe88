"""A method's own iteration structure: rounds of several synthesis calls and student steps."""

from __future__ import annotations

import pytest

from ssdkd.engine.runner import run_rounds
from ssdkd.methods import RoundPlan
from tests.engine.scripted import CONFIG, GOOD, ScriptedMethod, eval_data


class Alternating(ScriptedMethod):
    """Three (synthesis, two student steps) iterations per round; synthesis only in warm-up."""

    def __init__(self) -> None:
        super().__init__(students={r: GOOD for r in range(CONFIG.rounds)})
        self.calls: list[str] = []

    def round_plan(self, round_index: int) -> RoundPlan:
        return RoundPlan(iterations=3, student_steps=0 if round_index < 1 else 2)

    def synthesize(self, round_index: int) -> dict[str, float]:
        self.calls.append("S")
        metrics = super().synthesize(round_index)
        return {**metrics, "g_loss": float(len(self.calls))}

    def distill_step(self) -> dict[str, float]:
        self.calls.append("D")
        return super().distill_step()


def test_a_round_alternates_synthesis_and_student_steps_as_the_plan_says(tmp_path) -> None:
    """Prevents the engine's round from being the unit of synthesis: a generator-family
    method (one generator step, a few student steps, thousands of times) would otherwise
    be evaluated and checkpointed after every generator step."""
    method = Alternating()
    result = run_rounds(method, eval_data=eval_data(), run_dir=tmp_path, progress=False)
    assert "".join(method.calls) == "SSS" + "SDD" * 3 * (CONFIG.rounds - 1)
    assert [r["kd_steps"] for r in result.history] == [0, 6, 12, 18]
    assert [r["images_synthesized"] for r in result.history] == [12, 24, 36, 48]
    # Each synthesis metric is the mean over the round's calls: calls 1, 4, 7 in round 2.
    assert result.history[0]["g_loss"] == pytest.approx((1 + 2 + 3) / 3)
    assert result.history[1]["g_loss"] == pytest.approx((4 + 7 + 10) / 3)
    assert [r["accuracy"] for r in result.history] == [0.25, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"iterations": 0}, r"`iterations` to be an int >= 1, got 0"),
        ({"student_steps": -1}, r"`student_steps` to be an int >= 0, got -1"),
        ({"iterations": 2.0}, r"`iterations` to be an int >= 1, got 2.0"),
        ({"student_steps": True}, r"`student_steps` to be an int >= 0, got True"),
    ],
)
def test_a_bad_round_plan_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoundPlan(**fields)


def test_the_default_plan_is_one_synthesis_and_kd_steps_after_warm_up() -> None:
    method = ScriptedMethod()
    assert method.round_plan(0) == RoundPlan(1, 0)
    assert method.round_plan(CONFIG.warmup_rounds) == RoundPlan(1, CONFIG.kd_steps)
