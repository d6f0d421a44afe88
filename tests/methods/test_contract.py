"""The contract every registered method keeps, checked for each entry of the registry.

A method added to ``ssdkd.methods.registry.REGISTRY`` gets these tests without writing
them: exact resume after an interruption, a ``weights_only`` state round trip, KD steps
without host reads, bf16 on the CPU, its presets' JSON round trip, and a clear error for
another method's config.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ssdkd.engine.runner import run_rounds
from ssdkd.methods import (
    REGISTRY,
    MethodSpec,
    check_config_for,
    config_from_dict,
    config_to_dict,
    spec_of_config,
)
from tests.methods.tiny import build, tiny_config
from tests.syncs import no_host_reads

SPECS = pytest.mark.parametrize("spec", REGISTRY, ids=[spec.name for spec in REGISTRY])

# The tiny random teachers' synthetic data covers few classes, so these runs warn of
# collapse; the warning itself is tested in tests/engine/test_collapse.py.
pytestmark = pytest.mark.filterwarnings("ignore::ssdkd.engine.CollapseWarning")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Bit-exact comparisons need one intra-op thread: with two, a float reduction's order
    (and so SSD-KD's final student) can differ from run to run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _assert_same_state(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


class _Interrupted(Exception):
    pass


@SPECS
def test_an_interrupted_run_resumes_bit_identical(
    spec: MethodSpec, tmp_path: Path, one_thread: None
) -> None:
    """A run stopped mid-round and resumed from its checkpoint ends with the state of an
    uninterrupted run: student, optimisers, synthetic data, random streams."""
    del one_thread
    config = tiny_config(spec)
    straight = build(spec.method_class, config)
    run_rounds(straight, progress=False)

    stopped = build(spec.method_class, config)
    calls = {"steps": 0}
    step = stopped.distill_step

    def dying_step() -> dict[str, Any]:
        calls["steps"] += 1
        if calls["steps"] > config.kd_steps + 1:  # in the second round with KD steps
            raise _Interrupted
        return step()

    stopped.distill_step = dying_step  # type: ignore[method-assign]
    with pytest.raises(_Interrupted):
        run_rounds(stopped, run_dir=tmp_path, progress=False)
    resumed = build(spec.method_class, config)
    run_rounds(resumed, run_dir=tmp_path, resume=True, progress=False)
    _assert_same_state(straight.state_dict(), resumed.state_dict())


@SPECS
def test_the_state_round_trips_through_a_weights_only_load(
    spec: MethodSpec, one_thread: None
) -> None:
    """Everything needed to resume is tensors, numbers and strings: no pickled objects."""
    del one_thread
    config = tiny_config(spec)
    method = build(spec.method_class, config)
    for round_index in range(config.warmup_rounds + 1):
        method.synthesize(round_index)
    method.distill_step()
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    copy_ = build(spec.method_class, config)
    copy_.load_state_dict(state)
    _assert_same_state(method.state_dict(), copy_.state_dict())
    before = copy.deepcopy(method.state_dict())
    method.synthesize(config.warmup_rounds + 1)
    copy_.synthesize(config.warmup_rounds + 1)
    method.distill_step()
    copy_.distill_step()
    _assert_same_state(method.state_dict(), copy_.state_dict())
    with pytest.raises(AssertionError):  # the comparison sees a change
        _assert_same_state(before, method.state_dict())


@SPECS
def test_kd_steps_read_nothing_back(spec: MethodSpec) -> None:
    """A KD step that reads a value back to the host makes the CPU wait for the GPU."""
    config = tiny_config(spec)
    method = build(spec.method_class, config)
    for round_index in range(config.warmup_rounds + 1):
        method.synthesize(round_index)
    with no_host_reads():
        metrics = [method.distill_step() for _ in range(3)]
    assert all(float(m["skipped"]) == 0.0 for m in metrics)


@SPECS
def test_a_round_runs_in_bf16_on_the_cpu(spec: MethodSpec) -> None:
    config = tiny_config(spec)
    method = build(spec.method_class, config, precision="bf16")
    for round_index in range(config.warmup_rounds + 1):
        method.synthesize(round_index)
    metrics = method.distill_step()
    assert torch.isfinite(torch.as_tensor(metrics["kd_loss"]))
    assert all(torch.isfinite(p).all() for p in method.student.parameters())


@SPECS
def test_every_preset_is_the_methods_own_config_and_round_trips(spec: MethodSpec) -> None:
    for name, config in spec.presets.items():
        assert type(config) is spec.config_class, name
        assert config_from_dict(config_to_dict(config)) == config, name
        assert check_config_for(spec.name, config) is spec
        assert spec_of_config(config) is spec


@SPECS
def test_another_methods_config_is_refused_naming_both_methods(spec: MethodSpec) -> None:
    """Prevents a config of one method running another: an SSDKDConfig given to
    Fast-DFKD used to run Fast-DFKD and silently ignore the buffer, φ and β."""
    for other in REGISTRY:
        if other is spec:
            continue
        with pytest.raises(TypeError, match=rf"method '{spec.name}'.*method '{other.name}'"):
            check_config_for(spec.name, other.default)
        with pytest.raises(TypeError, match=spec.config_class.__name__):
            build(spec.method_class, tiny_config(other))
