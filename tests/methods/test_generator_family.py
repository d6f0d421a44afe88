"""The generator family (DAFL, DFAD, DFQ): loss terms, student loss, image flow, shapes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch import nn

from ssdkd.losses import attention_transfer, kd_kl_div, logit_l1
from ssdkd.methods import (
    DAFL,
    DAFL_MNIST,
    DAFL_PAPER,
    DFAD,
    DFAD_MNIST,
    DFQ,
    DFQ_PAPER,
    METHODS,
    RoundPlan,
)
from ssdkd.methods.zskt import matching_blocks
from ssdkd.models import create_model
from tests.methods.tiny import tiny_config

FAMILY = ("dafl", "dfad", "dfq", "zskt")


def _config(name: str, **changes: object) -> object:
    return dataclasses.replace(tiny_config(METHODS[name]), **changes)


def _build(name: str, *, teacher: str = "lenet5_bn", channels: int = 1, size: int = 28, **kw):
    teacher_net = create_model(
        teacher, num_classes=10, in_channels=channels, image_size=size, seed=0
    )
    student = create_model(
        "lenet5_half", num_classes=10, in_channels=channels, image_size=size, seed=1
    )
    return METHODS[name].method_class(
        teacher_net.eval(),
        student,
        kw.pop("config", _config(name)),
        num_classes=10,
        image_shape=(channels, size, size),
        normalization=((0.5,) * channels, (0.5,) * channels),
        seed=0,
        **kw,
    )


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_a_round_runs_at_28_and_32_pixels(name: str, channels: int, size: int) -> None:
    method = _build(name, channels=channels, size=size)
    plan = method.round_plan(method.config.warmup_rounds)
    assert plan == RoundPlan(method.config.iterations, method.config.kd_steps)
    for _ in range(plan.iterations):
        metrics = method.synthesize(method.config.warmup_rounds)
        for _ in range(plan.student_steps):
            step = method.distill_step()
    assert torch.isfinite(torch.tensor(metrics["loss_g"]))
    assert torch.isfinite(step["kd_loss"])
    assert method.kd_steps_done == plan.iterations * plan.student_steps
    assert method.synthetic_images().shape[1:] == (channels, size, size)


@pytest.mark.parametrize("name", ["dafl", "dfad", "zskt"])
def test_a_teacher_without_batchnorm_works_where_no_bn_term_needs_it(name: str) -> None:
    method = _build(name, teacher="lenet5")
    method.synthesize(0)
    assert torch.isfinite(method.distill_step()["kd_loss"])


def test_dfq_refuses_a_teacher_without_batchnorm() -> None:
    with pytest.raises(ValueError, match="Expected `teacher` to contain BatchNorm layers"):
        _build("dfq", teacher="lenet5")


def test_a_bn_term_is_refused_by_a_method_whose_teacher_needs_no_batchnorm() -> None:
    with pytest.raises(ValueError, match=r"`bn_weight` 0 for DAFL.*got 1\.0"):
        _build("dafl", config=_config("dafl", bn_weight=1.0))


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("dafl", {"loss_oh", "loss_balance", "loss_act"}),
        ("dfad", {"loss_adv"}),
        ("dfq", {"loss_bn", "loss_oh", "loss_adv", "loss_balance"}),
        ("zskt", {"loss_adv"}),
    ],
)
def test_each_method_trains_its_generator_on_its_papers_terms(name: str, parts: set) -> None:
    method = _build(name)
    metrics = method.synthesize(0)
    assert {k for k in metrics if k.startswith("loss_") and k != "loss_g"} == parts
    cfg = method.config
    weights = {
        "loss_bn": cfg.bn_weight,
        "loss_oh": cfg.oh_weight,
        "loss_balance": cfg.balance_weight,
        "loss_act": cfg.act_weight,
        "loss_adv": cfg.adv_weight,
    }
    total = sum(weights[k] * metrics[k] for k in parts)
    assert metrics["loss_g"] == pytest.approx(total, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", ["dafl", "dfad", "dfq", "zskt"])
def test_a_generator_step_computes_no_gradient_of_the_students_weights(name: str) -> None:
    """Prevents the generator's backward pass computing (and leaving behind) gradients of
    every student weight, work the student's own step then threw away."""
    method = _build(name)
    method.synthesize(0)
    assert all(p.grad is None for p in method.student.parameters())
    assert all(p.requires_grad for p in method.student.parameters())


def test_the_generator_moves_against_the_student_in_dfad() -> None:
    """The adversarial term is maximised: it enters the generator's loss negated."""
    method = _build("dfad")
    metrics = method.synthesize(0)
    assert metrics["loss_adv"] < 0


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_students_kd_temperature_is_the_configured_one(temperature: float) -> None:
    """Regression guard for the upstream scripts' defect: their generator-family students
    learned at temperature 1 whatever ``--T`` said."""
    method = _build("dfq", config=_config("dfq", temperature=temperature))
    method.synthesize(0)
    images = method.synthetic_images()
    student_copy = create_model("lenet5_half", num_classes=10, in_channels=1, image_size=28)
    student_copy.load_state_dict(method.student.state_dict())
    result = method.trainer.step(images)
    with torch.no_grad():
        x = method.model_input(images)
        expected = kd_kl_div(student_copy.train()(x), method.teacher(x), temperature=temperature)
    torch.testing.assert_close(result.per_sample, expected, rtol=1e-4, atol=1e-6)


def test_dfads_student_learns_the_l1_distance_of_the_logits() -> None:
    method = _build("dfad")
    method.synthesize(0)
    images = method.synthetic_images()
    student_copy = create_model("lenet5_half", num_classes=10, in_channels=1, image_size=28)
    student_copy.load_state_dict(method.student.state_dict())
    result = method.trainer.step(images)
    with torch.no_grad():
        x = method.model_input(images)
        expected = logit_l1(student_copy.train()(x), method.teacher(x))
    torch.testing.assert_close(result.per_sample, expected, rtol=1e-4, atol=1e-6)


def test_dafl_students_learn_from_the_generators_batch_and_others_from_fresh_ones() -> None:
    same = _build("dafl")
    assert same.config.student_images == "same"
    same.synthesize(0)
    batch = same.synthetic_images().clone()
    seen: list[torch.Tensor] = []
    step = same.trainer.step
    same.trainer.step = lambda images, *a, **k: (seen.append(images), step(images, *a, **k))[1]
    same.distill_step()
    assert torch.equal(seen[0], batch)
    fresh = _build("dfad")
    fresh.synthesize(0)
    before = fresh.images_synthesized
    fresh.distill_step()
    assert fresh.images_synthesized == before + fresh.config.kd_batch_size


def test_the_student_is_in_eval_mode_during_generator_updates_and_restored() -> None:
    method = _build("dfq")
    modes: list[bool] = []
    method.student.register_forward_pre_hook(lambda m, i: modes.append(m.training))
    method.student.train()
    method.synthesize(0)
    assert modes == [False] * method.config.g_steps
    assert method.student.training


def test_the_activation_term_needs_a_final_linear_layer() -> None:
    class NoLinear(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :10]

    with pytest.raises(ValueError, match=r"nn\.Linear layer for the activation term"):
        DAFL(
            NoLinear(),
            create_model("lenet5_half", num_classes=10, in_channels=1, image_size=28, seed=1),
            _config("dafl"),
            num_classes=10,
            image_shape=(1, 28, 28),
            normalization=((0.5,), (0.5,)),
        )


def test_the_published_settings_are_in_the_presets() -> None:
    assert (DAFL_PAPER.rounds, DAFL_PAPER.iterations, DAFL_PAPER.synthesis_batch_size) == (
        2000,
        120,
        1024,
    )
    assert (DAFL_MNIST.lr_g, DAFL_MNIST.student_optimizer, DAFL_MNIST.student_lr) == (
        0.2,
        "adam",
        2e-3,
    )
    assert DFAD_MNIST.rounds == 40
    assert (DFQ_PAPER.bn_weight, DFQ_PAPER.balance_weight, DFQ_PAPER.kd_steps) == (1.0, 20.0, 10)
    assert {type(c) for c in (DAFL_PAPER, DFAD_MNIST, DFQ_PAPER)} == {
        DAFL.config_class,
        DFAD.config_class,
        DFQ.config_class,
    }


def test_same_images_need_equal_batches() -> None:
    with pytest.raises(ValueError, match=r"`kd_batch_size` == `synthesis_batch_size`"):
        dataclasses.replace(DAFL_PAPER, kd_batch_size=256)


@pytest.mark.parametrize(
    ("student", "teacher", "shape", "blocks"),
    [
        ("wrn16_1", "wrn16_2", (3, 32, 32), ["block1", "block2", "bn"]),
        ("resnet18", "resnet34", (3, 32, 32), ["layer1", "layer2", "layer3", "layer4"]),
        ("tiny_cnn", "small_cnn", (1, 28, 28), ["features.2", "features.6", "features"]),
    ],
)
def test_attention_compares_the_block_outputs_at_each_shared_size(
    student: str, teacher: str, shape: tuple[int, int, int], blocks: list[str]
) -> None:
    size = {"in_channels": shape[0], "image_size": shape[1]}
    s, t = create_model(student, **size), create_model(teacher, **size)
    s.train()
    before = {k: v.clone() for k, v in s.state_dict().items()}
    assert matching_blocks(s, t, shape) == (blocks, blocks)
    assert s.training  # the probe restores the mode and changes no running statistic
    assert all(torch.equal(before[k], v) for k, v in s.state_dict().items())


def test_networks_without_a_shared_size_are_refused() -> None:
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(28 * 28, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x.flatten(1))

    lenet = create_model("lenet5", in_channels=1, image_size=28)
    with pytest.raises(ValueError, match="share a spatial size of a block output"):
        matching_blocks(Flat(), lenet, (1, 28, 28))


@pytest.mark.parametrize("beta", [0.0, 250.0])
def test_zskts_student_learns_kl_plus_beta_times_attention_transfer(beta: float) -> None:
    method = _build("zskt", config=_config("zskt", attention_weight=beta, temperature=2.0))
    method.synthesize(0)
    images = method.synthetic_images()
    student_copy = create_model("lenet5_half", num_classes=10, in_channels=1, image_size=28)
    student_copy.load_state_dict(method.student.state_dict())
    seen: list[torch.Tensor] = []
    step = method.trainer.step

    def spy(batch: torch.Tensor, *args: object, **kwargs: object):
        result = step(batch, *args, **kwargs)
        seen.append(result.per_sample)
        return result

    method.trainer.step = spy
    method.distill_step()
    names_s, names_t = method.attention_blocks
    x = method.model_input(images)
    with torch.no_grad():
        features_s: dict[str, torch.Tensor] = {}
        features_t: dict[str, torch.Tensor] = {}
        modules_s = dict(student_copy.train().named_modules())
        modules_t = dict(method.teacher.named_modules())
        hooks = [
            modules_s[n].register_forward_hook(lambda m, a, o, n=n: features_s.__setitem__(n, o))
            for n in names_s
        ] + [
            modules_t[n].register_forward_hook(lambda m, a, o, n=n: features_t.__setitem__(n, o))
            for n in names_t
        ]
        teacher_logits, student_logits = method.teacher(x), student_copy(x)
        for hook in hooks:
            hook.remove()
        expected = kd_kl_div(student_logits, teacher_logits, temperature=2.0) + beta * (
            attention_transfer([features_s[n] for n in names_s], [features_t[n] for n in names_t])
        )
    torch.testing.assert_close(seen[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["dafl", "dfad"])
def test_with_a_buffer_the_student_learns_from_priority_draws_of_the_generators_batches(
    name: str,
) -> None:
    """SSD-KD's transfer set plugged into the family: each generator batch enters the
    buffer with the teacher's logits on it, and a student step draws from the buffer with
    importance weights and sets the drawn images' priorities from their loss."""
    method = _build(name, config=_config(name, transfer="buffer"))
    method.synthesize(0)
    method.synthesize(1)
    transfer = method.transfer
    assert transfer is not None
    assert len(transfer.buffer) == 2 * method.config.synthesis_batch_size
    stored = transfer.buffer.data["teacher_logits"][: len(transfer.buffer)]
    with torch.no_grad():
        again = method.teacher(method.model_input(transfer.buffer.data["images"][:32])).float()
    torch.testing.assert_close(stored[:32], again, rtol=1e-5, atol=1e-5)
    before = transfer.buffer.priorities(torch.arange(len(transfer.buffer))).clone()
    metrics = method.distill_step()
    after = transfer.buffer.priorities(torch.arange(len(transfer.buffer)))
    assert 0 < int((after != before).sum()) <= method.config.kd_batch_size
    assert metrics["beta"] > method.config.beta  # β anneals over the student's steps
    assert method.synthetic_images().shape[0] == len(transfer.buffer)


@pytest.mark.filterwarnings("ignore::ssdkd.engine.CollapseWarning")
def test_an_interrupted_run_with_a_buffer_resumes_bit_identical(tmp_path) -> None:
    """The buffer (images, logits, priorities, generations) is part of the method's
    state: a run stopped in its second round of student steps and resumed ends with the
    state of an uninterrupted one."""
    from ssdkd.engine.runner import run_rounds
    from tests.methods.test_contract import _assert_same_state

    config = _config("dfad", transfer="buffer")
    straight = _build("dfad", config=config)
    run_rounds(straight, progress=False)
    stopped = _build("dfad", config=config)
    step, calls = stopped.distill_step, {"steps": 0}

    def dying_step() -> dict:
        calls["steps"] += 1
        if calls["steps"] > config.iterations * config.kd_steps + 1:
            raise KeyboardInterrupt
        return step()

    stopped.distill_step = dying_step
    with pytest.raises(KeyboardInterrupt):
        run_rounds(stopped, run_dir=tmp_path, progress=False)
    resumed = _build("dfad", config=config)
    run_rounds(resumed, run_dir=tmp_path, resume=True, progress=False)
    assert len(resumed.transfer.buffer) > 0
    _assert_same_state(straight.state_dict(), resumed.state_dict())


def test_phi_weights_dafls_one_hot_term_against_the_batchs_class_histogram() -> None:
    """φ on DAFL's one-hot term is Σ φ·CE / Σ φ with φ read at the teacher's class and
    maximum probability against the generator batch's own histogram."""
    from ssdkd.losses import diversity_difficulty_weights

    method = _build("dafl", config=_config("dafl", phi_weight=True, gamma=2.0))
    # Images of widely varying contrast: the untrained teacher gives them several classes.
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(16, 1, 28, 28, generator=gen) * torch.linspace(0.1, 8, 16).view(
        -1, 1, 1, 1
    )
    _, parts, logits = method._generator_loss(images)
    logits = logits.detach()
    classes = logits.argmax(dim=1)
    counts = torch.bincount(classes, minlength=10)
    assert int((counts > 0).sum()) >= 3
    phi = diversity_difficulty_weights(logits, counts, gamma=2.0)
    ce = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
    torch.testing.assert_close(parts["loss_oh"], (phi * ce).sum() / phi.sum())
    torch.testing.assert_close(parts["phi_mean"], phi.mean())


def test_the_plug_in_switches_refuse_settings_that_would_do_nothing() -> None:
    """Prevents a φ switch without the term it weights, and a refresh policy that needs
    a φ of stored images the family does not keep."""
    with pytest.raises(ValueError, match="`oh_weight` > 0 with `phi_weight`"):
        _config("dfad", phi_weight=True)
    with pytest.raises(ValueError, match="'lowest-phi'"):
        _config("dfad", transfer="buffer", refresh_policy="lowest-phi")
    with pytest.raises(ValueError, match="`synthesis_batch_size` <= `buffer_size`"):
        _config("dfad", transfer="buffer", buffer_size=8)


def test_zskts_generator_learning_rate_is_annealed_and_the_others_stay_constant() -> None:
    """ZSKT's paper anneals the generator with the student: a generator left at its full
    rate while the student's fell to 0 pulled the student's BatchNorm statistics onto
    adversarial images at the end of a run (validation accuracy 79.5% → 52.7% in its last
    5 rounds on Fashion-MNIST)."""
    zskt, dfad = _build("zskt"), _build("dfad")
    steps = zskt.config.rounds * zskt.config.iterations * zskt.config.g_steps
    rates = []
    for round_index in range(zskt.config.rounds):
        for _ in range(zskt.config.iterations):
            zskt.synthesize(round_index)
            rates.append(zskt.generator_optimizer.param_groups[0]["lr"])
    assert len(rates) == steps
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    dfad.synthesize(0)
    assert dfad.generator_optimizer.param_groups[0]["lr"] == dfad.config.lr_g
