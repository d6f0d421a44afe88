"""Synthesis and distillation steps of each method on tiny BN nets."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import ssdkd
from ssdkd.generators import random_mixup
from ssdkd.losses import kd_kl_div, weighted_mean
from ssdkd.methods import (
    SSDKD,
    DeepInversion,
    FastDFKD,
    NoiseControl,
    RealData,
    SSDKDConfig,
    real_data_for,
)
from ssdkd.methods.meta_synthesis import SynthesisOutput
from ssdkd.sampling import reservoir_slots
from tests.methods.tiny import (
    IMAGE_SHAPE,
    IMAGE_SHAPE_28,
    NORMALIZATION,
    NUM_CLASSES,
    TINY_SSDKD,
    build,
    make_student,
    make_teacher,
)


def _fill(method: SSDKD, rounds: int) -> None:
    for r in range(rounds):
        method.synthesize(r)


def test_kd_step_decreases_loss_on_a_fixed_batch(tiny_fast_config):
    config = dataclasses.replace(tiny_fast_config, kd_augment=False, student_lr=0.1)
    method = build(FastDFKD, config)
    images = torch.rand(16, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(3))
    losses = [method.trainer.step(images)[0]["kd_loss"] for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_kd_mixup_distils_on_blends_the_teacher_labels(tiny_fast_config):
    """With ``kd_mixup`` the student and the teacher both see the blended batch."""
    config = dataclasses.replace(tiny_fast_config, kd_augment=False, kd_mixup=True)
    method = build(FastDFKD, config)
    images = torch.rand(16, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(3))
    replay = torch.Generator().set_state(method.trainer.generator.get_state())
    blends = random_mixup(images, generator=replay)
    assert not torch.equal(blends, images)
    student_copy = make_student()
    student_copy.load_state_dict(method.student.state_dict())
    student_copy.train()
    metrics = method.trainer.step(images)[0]
    with torch.no_grad():
        x = method.model_input(blends)
        kl = kd_kl_div(student_copy(x), method.teacher(x), temperature=config.temperature)
    assert float(metrics["kl"]) == pytest.approx(float(kl.mean()), rel=1e-5)


def test_meta_generator_rounds_lower_the_bn_loss(tiny_fast_config):
    config = dataclasses.replace(tiny_fast_config, rounds=40, warmup_rounds=39, lr_g=0.02)
    method = build(FastDFKD, config)
    bn = [method.synthesize(r)["synth_bn"] for r in range(25)]
    assert sum(bn[-5:]) < 0.7 * sum(bn[:5])


def test_fast_dfkd_pool_grows_one_batch_per_round(tiny_fast_config):
    method = build(FastDFKD, tiny_fast_config)
    for r in range(3):
        metrics = method.synthesize(r)
    assert method.synthetic_images().shape == (48, *IMAGE_SHAPE)
    assert metrics["images_synthesized"] == 48
    assert float(method.synthetic_images().min()) >= 0.0
    assert float(method.synthetic_images().max()) <= 1.0


@pytest.mark.parametrize("method_class", [FastDFKD, SSDKD])
def test_synthesis_stops_after_synthesis_rounds(method_class, tiny_fast_config, tiny_ssdkd_config):
    """After ``synthesis_rounds`` rounds the images stay as they are and the generator stops:
    the late adversarial images once pulled a Fashion-MNIST student off its peak."""
    base = tiny_ssdkd_config if method_class is SSDKD else tiny_fast_config
    method = build(method_class, dataclasses.replace(base, synthesis_share=0.5))  # 2 of 4
    for r in range(2):
        method.synthesize(r)
    images = method.synthetic_images().clone()
    meta = method.synthesis.meta
    generator = [p.detach().clone() for p in meta.parameters()]
    metrics = method.synthesize(2)
    assert torch.equal(method.synthetic_images(), images)
    assert all(torch.equal(b, a) for b, a in zip(generator, meta.parameters(), strict=True))
    assert method.images_synthesized == 32
    assert metrics["images_synthesized"] == 32
    assert "synth_loss" not in metrics
    assert 0.0 <= metrics["data_class_entropy"] <= 1.0
    method.distill_step()  # the student still learns from what is there


def test_synthesis_share_sets_the_synthesising_rounds(tiny_fast_config):
    config = dataclasses.replace(tiny_fast_config, rounds=5, warmup_rounds=1)
    assert all(config.synthesizes(r) for r in range(5))
    limited = dataclasses.replace(config, synthesis_share=0.6)
    assert [limited.synthesizes(r) for r in range(5)] == [True, True, True, False, False]
    assert dataclasses.replace(config, synthesis_share=0.01, warmup_rounds=0).synthesis_rounds == 1
    assert dataclasses.replace(limited, rounds=150).synthesis_rounds == 90


def test_reptile_meta_step_moves_the_meta_generator(tiny_fast_config):
    method = build(FastDFKD, dataclasses.replace(tiny_fast_config, meta_algorithm="reptile"))
    before = [p.detach().clone() for p in method.synthesis.meta.parameters()]
    method.synthesize(0)
    after = list(method.synthesis.meta.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def test_ssdkd_buffer_receives_images_and_stays_at_capacity(tiny_ssdkd_config):
    method = build(SSDKD, tiny_ssdkd_config)
    method.synthesize(0)
    assert len(method.buffer) == 16
    _fill(method, 4)
    assert len(method.buffer) == tiny_ssdkd_config.buffer_size
    assert method.images_synthesized == 16 * 5
    stored = method.buffer.data
    assert torch.equal(stored["labels"], stored["teacher_logits"].argmax(dim=1))


def test_lowest_phi_refresh_replaces_the_lowest_phi_entries(tiny_ssdkd_config):
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, refresh_policy="lowest-phi"))
    _fill(method, 3)  # 48 > 40: the buffer is full
    before = {k: v.clone() for k, v in method.buffer.data.items()}
    phi_before = method.phi(before["teacher_logits"])
    method.synthesize(3)
    after = method.buffer.data
    changed = (after["images"] != before["images"]).flatten(1).any(dim=1)
    assert int(changed.sum()) == 16
    lowest = torch.topk(phi_before, 16, largest=False).values.max()
    assert bool((phi_before[changed] <= lowest + 1e-12).all())


def test_lowest_phi_refresh_evicts_the_most_confident_images(tiny_ssdkd_config):
    """Regression: SSD-KD refreshed its full buffer by lowest φ, and with γ = 2 the lowest
    φ belongs to the images the teacher is most sure of, so the buffer threw away its new
    confident images and kept the early unconfident ones. FIFO is the default now; the
    lowest-φ policy stays available and, with the difficulty factor alone, evicts exactly
    the most confident images (28×28 images)."""
    assert SSDKDConfig().refresh_policy == "fifo"
    config = dataclasses.replace(
        tiny_ssdkd_config, refresh_policy="lowest-phi", use_diversity=False
    )
    method = build(SSDKD, config, image_shape=IMAGE_SHAPE_28)
    _fill(method, 3)  # 48 > 40: the buffer is full
    before = {k: v.clone() for k, v in method.buffer.data.items()}
    confidence = before["teacher_logits"].softmax(dim=1).max(dim=1).values
    method.synthesize(3)
    changed = (method.buffer.data["images"] != before["images"]).flatten(1).any(dim=1)
    assert int(changed.sum()) == 16
    assert float(confidence[changed].min()) >= float(confidence[~changed].max())


def test_a_batch_that_fills_the_buffer_never_evicts_its_own_images(tiny_ssdkd_config, monkeypatch):
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, refresh_policy="lowest-phi"))
    _fill(method, 2)  # 32 of 40 slots used
    outputs = []
    run = method.synthesis.run

    def spy(**kwargs):
        outputs.append(run(**kwargs))
        return outputs[-1]

    monkeypatch.setattr(method.synthesis, "run", spy)
    method.synthesize(2)  # 8 images fill the free slots, 8 replace older entries
    stored = method.buffer.data["images"].flatten(1)
    new = outputs[0].images.flatten(1)
    present = (stored[None, :, :] == new[:, None, :]).all(dim=2).any(dim=1)
    assert present.all()
    assert len(method.buffer) == 40


def test_fifo_refresh_replaces_the_oldest_entries(tiny_ssdkd_config):
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, refresh_policy="fifo"))
    _fill(method, 2)
    before = method.buffer.data["images"].clone()
    method.synthesize(2)  # 8 free slots, then 8 overwrite slots 0..7
    after = method.buffer.data["images"]
    assert after.shape[0] == 40
    changed = (after[:32] != before).flatten(1).any(dim=1)
    assert changed[:8].all()
    assert not changed[8:32].any()


def test_phi_modulates_the_task_loss_during_inversion(tiny_ssdkd_config, monkeypatch):
    method = build(SSDKD, tiny_ssdkd_config)
    calls: list[tuple[int, ...]] = []
    original = method.phi

    def spy(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        calls.append(tuple(logits.shape))
        return original(logits, targets)

    monkeypatch.setattr(method, "phi", spy)
    method.synthesize(0)
    assert calls == [(16, NUM_CLASSES)] * tiny_ssdkd_config.g_steps


def test_without_phi_the_task_loss_is_unweighted(tiny_ssdkd_config, monkeypatch):
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, use_phi=False))
    monkeypatch.setattr(method, "phi", lambda *a, **k: pytest.fail("phi must not be used"))
    method.synthesize(0)


def test_reservoir_refresh_keeps_images_of_early_rounds(tiny_ssdkd_config, monkeypatch):
    """With ``refresh_policy="reservoir"`` a full buffer stays a sample of every round, where
    FIFO keeps only the last rounds (40 slots = the last 2.5 rounds of 16 images)."""
    made = []

    def constant_batch(**kwargs):
        # Images whose every pixel is the index of the round that made them.
        value = len(made) / 100
        made.append(value)
        return SynthesisOutput(
            images=torch.full((16, *IMAGE_SHAPE), value),
            targets=torch.zeros(16, dtype=torch.long),
            teacher_logits=torch.zeros(16, NUM_CLASSES),
            metrics={},
        )

    rounds = {}
    for policy in ("fifo", "reservoir"):
        made.clear()
        method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, refresh_policy=policy))
        monkeypatch.setattr(method.synthesis, "run", constant_batch)
        _fill(method, 12)
        assert len(method.buffer) == 40
        rounds[policy] = (method.buffer.data["images"][:, 0, 0, 0] * 100).round().long()
    assert int(rounds["fifo"].min()) >= 9
    # Each of the first 96 images (6 rounds) is kept with probability 40/192; none kept
    # would have probability (1 - 40/192)^96 < 1e-9.
    assert int((rounds["reservoir"] < 6).sum()) > 0


def test_reservoir_refresh_counts_the_stream_from_the_first_image(tiny_ssdkd_config, monkeypatch):
    """The stream index of a batch's first replacing image is the number of images made
    before it: 40 at round 3 (8 of its 16 fill the last free slots), 48 at round 4."""
    calls = []

    def spy(first_index, count, capacity, **kwargs):
        calls.append((first_index, count, capacity))
        return reservoir_slots(first_index, count, capacity, **kwargs)

    monkeypatch.setattr("ssdkd.sampling.refresh.reservoir_slots", spy)
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, refresh_policy="reservoir"))
    _fill(method, 4)
    assert calls == [(40, 8, 40), (48, 16, 40)]


def test_refresh_policy_is_independent_of_use_phi(tiny_ssdkd_config, monkeypatch):
    """Regression: `use_phi=False` still evicted by φ, so the "no φ" ablation kept φ's
    eviction; now `use_phi` only switches the task weights and `refresh_policy` alone
    decides eviction."""
    config = dataclasses.replace(tiny_ssdkd_config, use_phi=False, refresh_policy="lowest-phi")
    method = build(SSDKD, config)
    _fill(method, 3)
    calls: list[bool] = []
    original = method.phi

    def spy(logits: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        calls.append(targets is None)
        return original(logits, targets)

    monkeypatch.setattr(method, "phi", spy)
    method.synthesize(3)
    assert calls == [True]  # once, for the stored images; never for the task loss
    fifo = build(SSDKD, dataclasses.replace(config, refresh_policy="fifo"))
    _fill(fifo, 3)
    monkeypatch.setattr(fifo, "phi", lambda *a, **k: pytest.fail("fifo must not read φ"))
    fifo.synthesize(3)


def test_phi_reads_the_target_class_and_probability_by_default(tiny_ssdkd_config):
    """Regression: φ read p_T as the teacher's maximum probability and counted its predicted
    class, so an image the teacher confidently put in the wrong class got φ ≈ 0 and lost
    the push towards its target, and an over-produced class could only lose weight."""
    method = build(SSDKD, tiny_ssdkd_config, image_shape=IMAGE_SHAPE_28)
    _fill(method, 2)
    counts = method.buffer.class_counts("labels", NUM_CLASSES).double()
    logits = torch.tensor([[8.0, 0.0, 0.0, 0.0]] * 2)  # confidently class 0
    targets = torch.tensor([0, 1])
    probs = logits.double().softmax(dim=1)
    phi = method.phi(logits, targets).double()
    diversity = 1 - counts[targets] / counts.sum()
    difficulty = (1 - probs[torch.arange(2), targets]) ** 2
    assert torch.allclose(phi, diversity * difficulty, atol=1e-6)
    assert phi[1] > 0.5 * diversity[1]  # wrong class: φ stays large, the push stays on
    old = build(
        SSDKD,
        dataclasses.replace(tiny_ssdkd_config, phi_confidence="max", phi_class="predicted"),
        image_shape=IMAGE_SHAPE_28,
    )
    _fill(old, 2)
    assert float(old.phi(logits, targets)[1]) < 1e-4  # the old reading switched it off


@pytest.mark.parametrize("normalization", ["weights", "batch"])
def test_phi_normalization_sets_the_task_loss_scale(tiny_ssdkd_config, normalization):
    """Regression: the φ-weighted task loss was divided by B, so with γ = 2 its weight
    fell from oh_weight to a few hundredths of it; "weights" divides by Σφ instead."""
    method = build(
        SSDKD,
        dataclasses.replace(tiny_ssdkd_config, phi_normalization=normalization),
        image_shape=IMAGE_SHAPE_28,
    )
    _fill(method, 2)
    logits = torch.randn(16, NUM_CLASSES, generator=torch.Generator().manual_seed(3))
    targets = torch.arange(16) % NUM_CLASSES
    weights = method._task_weights(logits, targets)
    phi = method.phi(logits, targets)
    if normalization == "weights":
        assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)
        assert torch.allclose(weights / weights.sum(), phi / phi.sum())
    else:
        assert torch.equal(weights, phi)


def test_ablation_switches_reduce_phi_to_one_factor(tiny_ssdkd_config):
    logits = torch.randn(16, NUM_CLASSES, generator=torch.Generator().manual_seed(0))
    confidence = logits.softmax(dim=1).max(dim=1).values
    no_div = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, use_diversity=False))
    _fill(no_div, 2)
    assert torch.allclose(no_div.phi(logits), (1 - confidence) ** 2)
    no_diff = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, use_difficulty=False))
    _fill(no_diff, 2)
    counts = no_diff.buffer.class_counts("labels", NUM_CLASSES).double()
    expected = 1 - counts[logits.argmax(dim=1)] / counts.sum()
    assert torch.allclose(no_diff.phi(logits).double(), expected)


def _spy_sample(method: SSDKD, monkeypatch: pytest.MonkeyPatch) -> list:
    samples = []
    original = method.buffer.sample

    def spy(batch_size: int):
        sample = original(batch_size)
        samples.append(sample)
        return sample

    monkeypatch.setattr(method.buffer, "sample", spy)
    return samples


def test_priorities_of_the_drawn_items_become_w_times_kl(tiny_ssdkd_config, monkeypatch):
    method = build(SSDKD, tiny_ssdkd_config)
    _fill(method, 2)
    before = method.buffer.priorities().clone()
    assert torch.all(before == 1.0)  # new items enter with the initial maximum priority
    samples = _spy_sample(method, monkeypatch)
    method.distill_step()
    after = method.buffer.priorities()
    drawn = torch.unique(samples[0].indices)
    assert not torch.equal(after[drawn], before[drawn])
    untouched = torch.ones_like(after, dtype=torch.bool)
    untouched[drawn] = False
    assert torch.equal(after[untouched], before[untouched])


def test_importance_weights_reach_the_kd_loss(tiny_ssdkd_config, monkeypatch):
    """Regression: `kd_loss` meant different things per method (importance-weighted for
    SSD-KD, plain for the others), so their records could not be compared. SSD-KD's
    `kd_loss` is the weighted loss it optimises, `kl_drawn` the plain mean of KL · T² over
    the drawn batch and `kl` that mean corrected for the priority draw (28×28 images)."""
    config = dataclasses.replace(tiny_ssdkd_config, kd_augment=False, beta=1.0)
    method = build(SSDKD, config, image_shape=IMAGE_SHAPE_28)
    _fill(method, 2)
    # Skewed priorities make the importance weights differ from 1.
    slots = torch.arange(len(method.buffer))
    method.buffer.update_priorities(slots, torch.linspace(0.01, 5.0, len(slots)))
    samples = _spy_sample(method, monkeypatch)
    student_copy = make_student()
    student_copy.load_state_dict(method.student.state_dict())
    metrics = method.distill_step()
    sample = samples[0]
    assert float(sample.weights.min()) < 0.99
    x = method.model_input(sample.data["images"])
    student_copy.train()
    with torch.no_grad():
        kl = kd_kl_div(student_copy(x), method.teacher(x), temperature=config.temperature)
    expected = weighted_mean(kl, sample.weights)
    assert metrics["kd_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert metrics["kd_loss"] != pytest.approx(float(kl.mean()), rel=1e-3)
    assert metrics["kl_drawn"] == pytest.approx(float(kl.mean()), rel=1e-5)
    corrected = kl / (len(method.buffer) * sample.probabilities.float())
    assert metrics["kl"] == pytest.approx(float(corrected.mean()), rel=1e-5)
    w = sample.weights.double()
    ess = float(w.sum() ** 2 / (w.numel() * (w**2).sum()))
    assert float(metrics["weight_ess"]) == pytest.approx(ess, rel=1e-5)
    assert 0 < ess < 1  # unequal weights: fewer effective draws than the batch


def test_equal_weights_have_effective_sample_size_one(tiny_fast_config):
    method = build(FastDFKD, dataclasses.replace(tiny_fast_config, kd_augment=False))
    images = torch.rand(8, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(4))
    metrics = method.trainer.step(images, torch.full((8,), 0.25))[0]
    assert float(metrics["weight_ess"]) == pytest.approx(1.0, rel=1e-6)


def test_uniform_ablation_draws_with_unit_weights(tiny_ssdkd_config, monkeypatch):
    method = build(SSDKD, dataclasses.replace(tiny_ssdkd_config, priority_sampling=False))
    _fill(method, 2)
    slots = torch.arange(len(method.buffer))
    method.buffer.update_priorities(slots, torch.linspace(0.01, 5.0, len(slots)))
    samples = _spy_sample(method, monkeypatch)
    method.distill_step()
    assert torch.equal(samples[0].weights, torch.ones_like(samples[0].weights))


def test_beta_is_annealed_towards_its_final_value(tiny_ssdkd_config):
    method = build(SSDKD, tiny_ssdkd_config)
    _fill(method, 1)
    betas = [method.distill_step()["beta"] for _ in range(4)]
    assert betas == sorted(betas)
    assert tiny_ssdkd_config.beta < betas[0] <= tiny_ssdkd_config.beta_final


def test_deepinversion_pixels_lower_the_inversion_loss(tiny_di_config):
    short = build(DeepInversion, dataclasses.replace(tiny_di_config, iterations=1))
    long = build(DeepInversion, dataclasses.replace(tiny_di_config, iterations=60))
    assert long.synthesize(0)["synth_loss"] < short.synthesize(0)["synth_loss"]
    assert long.synthetic_images().shape == (16, *IMAGE_SHAPE)


def test_noise_control_accepts_a_teacher_without_batchnorm(tiny_noise_config):
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, NUM_CLASSES))
    method = NoiseControl(
        teacher,
        make_student(),
        tiny_noise_config,
        num_classes=NUM_CLASSES,
        image_shape=IMAGE_SHAPE,
        normalization=((0.5,), (0.25,)),
    )
    method.synthesize(0)
    assert method.synthetic_images().shape == (64, *IMAGE_SHAPE)
    assert "kd_loss" in method.distill_step()


@pytest.mark.parametrize("method_class", [SSDKD, FastDFKD, DeepInversion])
def test_a_teacher_without_batchnorm_is_refused(
    method_class, tiny_ssdkd_config, tiny_fast_config, tiny_di_config
):
    config = {SSDKD: tiny_ssdkd_config, FastDFKD: tiny_fast_config, DeepInversion: tiny_di_config}
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, NUM_CLASSES))
    with pytest.raises(ValueError, match="BatchNorm"):
        method_class(
            teacher,
            make_student(),
            config[method_class],
            num_classes=NUM_CLASSES,
            image_shape=IMAGE_SHAPE,
            normalization=((0.5,), (0.25,)),
        )


def test_method_refuses_a_config_of_another_method(tiny_fast_config):
    with pytest.raises(TypeError, match="SSDKDConfig"):
        build(SSDKD, tiny_fast_config)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"alpha": -0.1}, "alpha"),
        ({"beta": 1.5}, "beta"),
        ({"rounds": 3, "warmup_rounds": 3}, "warmup_rounds"),
        ({"refresh_policy": "random"}, "refresh_policy"),
        ({"temperature": 0.0}, "temperature"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"synthesis_share": 0.0}, "synthesis_share"),
        ({"synthesis_share": 1.5}, "synthesis_share"),
    ],
)
def test_invalid_config_fields_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        SSDKDConfig(**changes)


def test_a_batch_larger_than_the_buffer_is_refused(tiny_ssdkd_config):
    with pytest.raises(ValueError, match="synthesis_batch_size"):
        build(SSDKD, dataclasses.replace(tiny_ssdkd_config, buffer_size=8))


def test_mismatched_normalization_is_refused(tiny_ssdkd_config):
    with pytest.raises(ValueError, match="normalization"):
        SSDKD(
            make_teacher(),
            make_student(),
            tiny_ssdkd_config,
            num_classes=NUM_CLASSES,
            image_shape=IMAGE_SHAPE,
            normalization=((0.5, 0.5), (0.2, 0.2)),
        )


@pytest.mark.filterwarnings("ignore::ssdkd.methods.precision.SlowPrecisionWarning")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_steps_run_on_cpu(precision, tiny_ssdkd_config):
    method = build(SSDKD, tiny_ssdkd_config, precision=precision)
    method.synthesize(0)
    metrics = method.distill_step()
    assert metrics["skipped"] == 0.0
    assert bool(torch.isfinite(torch.as_tensor(metrics["kd_loss"])))


def test_a_non_finite_kd_loss_skips_the_step_and_keeps_the_weights(tiny_fast_config):
    method = build(FastDFKD, tiny_fast_config)
    method.synthesize(0)
    before = {k: v.clone() for k, v in method.student.state_dict().items()}
    with torch.no_grad():
        method.student.head.bias.fill_(float("nan"))
    poisoned = {k: v.clone() for k, v in method.student.state_dict().items()}
    metrics = method.distill_step()
    assert metrics["skipped"] == 1.0
    for key, value in method.student.state_dict().items():
        assert torch.equal(value, poisoned[key]) or torch.allclose(
            value, poisoned[key], equal_nan=True
        )
    assert before.keys() == poisoned.keys()


@pytest.mark.parametrize("policy", ["fifo", "lowest-phi", "reservoir"])
def test_state_dict_round_trip_continues_identically(tiny_ssdkd_config, policy):
    """Round 3 refreshes the full buffer: each policy resumes to the same buffer."""
    config = dataclasses.replace(tiny_ssdkd_config, refresh_policy=policy)
    first = build(SSDKD, config)
    _fill(first, 3)
    first.distill_step()
    state = first.state_dict()
    second = build(SSDKD, config, seed=123)
    second.load_state_dict(state)
    for method in (first, second):
        method.synthesize(3)
        method.distill_step()
    for a, b in zip(
        first.student.state_dict().values(), second.student.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert torch.equal(first.buffer.priorities(), second.buffer.priorities())
    assert torch.equal(first.buffer.data["images"], second.buffer.data["images"])


def test_a_rounding_negative_kl_does_not_stop_the_run(tiny_ssdkd_config, monkeypatch):
    """Regression: float32 KL of agreeing networks can be -1e-7, a negative priority."""
    method = build(SSDKD, tiny_ssdkd_config)
    _fill(method, 1)
    step = method.trainer.step

    def negative_kl(images, weights=None, **kwargs):
        metrics, kl, applied = step(images, weights, **kwargs)
        return metrics, torch.full_like(kl, -1e-7), applied

    monkeypatch.setattr(method.trainer, "step", negative_kl)
    method.distill_step()
    assert bool((method.buffer.priorities() >= 0).all())


def test_ssdkd_kl_estimates_the_buffer_mean_not_the_drawn_mean(tiny_ssdkd_config, monkeypatch):
    """Prevents ``kl`` of SSD-KD being biased towards high-KL images: it was the mean over
    priority-drawn batches, so it was not comparable with the uniform pools' ``kl``."""
    config = dataclasses.replace(tiny_ssdkd_config, alpha=1.0, beta=0.0, beta_final=0.0)
    method = build(SSDKD, config)
    _fill(method, 1)
    size = len(method.buffer)
    slot_kl = torch.linspace(0.01, 4.0, size)  # a known KL · T² per stored slot
    method.buffer.update_priorities(torch.arange(size), slot_kl.double())
    images = method.buffer.data["images"]
    real_step = method.trainer.step

    def known_kl(batch, weights=None, **kwargs):
        metrics, _, applied = real_step(batch, weights, **kwargs)
        slots = (batch.flatten(1)[:, None, :] == images.flatten(1)[None]).all(-1).float()
        per_sample = slots.argmax(1).to(torch.float32)
        per_sample = slot_kl[per_sample.long()]
        metrics["kl"] = per_sample.mean()
        return metrics, per_sample, applied

    monkeypatch.setattr(method.trainer, "step", known_kl)
    # Priorities stay as set: the step's own δ = w·KL equals slot_kl at β = 0 (w = 1)
    # up to the T² factor, so freeze them by putting them back after each step.
    estimates, drawn = [], []
    for _ in range(300):
        metrics = method.distill_step()
        method.buffer.update_priorities(torch.arange(size), slot_kl.double())
        estimates.append(float(metrics["kl"]))
        drawn.append(float(metrics["kl_drawn"]))
    truth = float(slot_kl.mean())
    assert sum(estimates) / len(estimates) == pytest.approx(truth, rel=0.05)
    assert sum(drawn) / len(drawn) > 1.2 * truth  # what `kl` used to report


def _separable(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8×8 images whose class c lights up row 2c: a student can learn them exactly."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    images = torch.rand(n, *IMAGE_SHAPE, generator=gen) * 0.3
    images[torch.arange(n), 0, 2 * labels] = 1.0
    return images, labels


def test_the_real_data_bound_learns_the_labels_with_the_student_step():
    """The extension point at work: a method that is not data-free, from the same student
    step with cross-entropy on labels and no teacher in the loss."""
    config = dataclasses.replace(
        real_data_for(TINY_SSDKD), kd_augment=False, student_lr=0.1, kd_steps=200, rounds=1
    )
    method = build(RealData, config, train_data=_separable(256, 0))
    before = make_student().state_dict()
    assert "kl" not in method.distill_step()
    for _ in range(config.kd_steps - 1):
        method.distill_step()
    images, labels = _separable(128, 1)
    with torch.no_grad():
        method.student.eval()
        predictions = method.student(method.model_input(images)).argmax(1)
    assert float((predictions == labels).float().mean()) > 0.9
    assert not torch.equal(before["head.weight"], method.student.state_dict()["head.weight"])


@pytest.mark.parametrize(
    ("train_data", "error", "message"),
    [
        ([torch.zeros(4, 1, 8, 8), torch.zeros(4)], TypeError, "tuple"),
        (
            (torch.zeros(4, 1, 6, 6), torch.zeros(4, dtype=torch.long)),
            ValueError,
            r"\(N, 1, 8, 8\)",
        ),
        (
            (torch.full((4, 1, 8, 8), 255.0), torch.zeros(4, dtype=torch.long)),
            ValueError,
            r"\[0, 1\]",
        ),
        (
            (torch.zeros(4, 1, 8, 8), torch.full((4,), 9)),
            ValueError,
            r"labels as integers in \[0, 4\)",
        ),
    ],
)
def test_bad_real_training_data_is_refused_naming_it(train_data, error, message):
    with pytest.raises(error, match=message):
        build(RealData, real_data_for(TINY_SSDKD), train_data=train_data)


def test_distill_takes_train_data_for_the_real_data_bound_only():
    teacher, student = make_teacher(), make_student()
    common = {
        "num_classes": NUM_CLASSES,
        "image_shape": IMAGE_SHAPE,
        "normalization": NORMALIZATION,
        "progress": False,
    }
    with pytest.raises(ValueError, match="Expected `train_data`"):
        ssdkd.distill(teacher, student, "real-data", config=real_data_for(TINY_SSDKD), **common)
    with pytest.raises(ValueError, match="Expected no `train_data` for method 'ssd-kd'"):
        ssdkd.distill(
            teacher, student, "ssd-kd", config=TINY_SSDKD, train_data=_separable(8, 0), **common
        )
    result = ssdkd.distill(
        teacher,
        student,
        "real-data",
        config=dataclasses.replace(real_data_for(TINY_SSDKD), rounds=2),
        train_data=_separable(32, 0),
        **common,
    )
    assert [r["kd_steps"] for r in result.history] == [3, 6]


def test_fp16_on_the_cpu_warns_that_it_is_slow(tiny_ssdkd_config) -> None:
    """Regression: fp16 on the CPU ran many times slower than fp32 without a word."""
    from ssdkd.methods.precision import SlowPrecisionWarning

    with pytest.warns(SlowPrecisionWarning, match="'bf16' is the reduced precision"):
        build(SSDKD, tiny_ssdkd_config, precision="fp16")


def _agreement(method: RealData, images: torch.Tensor, reference: torch.Tensor) -> float:
    with torch.no_grad():
        method.student.eval()
        predictions = method.student(method.model_input(images)).argmax(1)
    return float((predictions == reference).float().mean())


def test_the_real_data_student_follows_the_teacher_not_the_labels_with_target_teacher():
    """``target="teacher"``: distillation on real images (KL to the teacher), the labels
    unused: with labels that contradict the teacher, the student learns the teacher."""
    config = dataclasses.replace(
        real_data_for(TINY_SSDKD),
        kd_augment=False,
        student_lr=0.1,
        kd_steps=300,
        rounds=1,
        target="teacher",
    )
    images, _ = _separable(256, 0)
    teacher = make_teacher()
    with torch.no_grad():
        teacher.eval()
        teacher_classes = teacher(build(RealData, config).model_input(images)).argmax(1)
    wrong = (teacher_classes + 1) % NUM_CLASSES  # never the teacher's class
    method = build(RealData, config, train_data=(images, wrong))
    assert "kl" in method.distill_step()
    for _ in range(config.kd_steps - 1):
        method.distill_step()
    assert _agreement(method, images, teacher_classes) > 0.8
    assert _agreement(method, images, wrong) < 0.2


def test_the_real_data_subset_is_fixed_by_the_seed_and_drawn_from_only():
    """``train_images=N``: the student learns from N images, the same N for a seed."""
    config = dataclasses.replace(real_data_for(TINY_SSDKD), train_images=10)
    data = _separable(64, 0)
    first, again, other = (
        build(RealData, config, seed=seed, train_data=data) for seed in (3, 3, 4)
    )
    assert first.images.shape[0] == 10
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.labels, again.labels)
    assert not torch.equal(first.images, other.images)
    # Each subset image is one of the given images, with its own label.
    matches = (first.images.flatten(1)[:, None] == data[0].flatten(1)[None]).all(2)
    assert bool(matches.any(1).all())
    assert torch.equal(first.labels, data[1][matches.float().argmax(1)])


def test_a_real_data_subset_larger_than_the_data_is_refused_naming_it():
    config = dataclasses.replace(real_data_for(TINY_SSDKD), train_images=65)
    with pytest.raises(ValueError, match=r"`train_images` <= the 64 training images.*got 65"):
        build(RealData, config, train_data=_separable(64, 0))
    with pytest.raises(ValueError, match="target"):
        dataclasses.replace(real_data_for(TINY_SSDKD), target="logits")
    with pytest.raises(ValueError, match="train_images"):
        dataclasses.replace(real_data_for(TINY_SSDKD), train_images=-1)
