"""Per-role random streams: derivation, state, and ablation arms that share their draws."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssdkd.methods import REGISTRY, SSDKD, FastDFKD, MethodSpec
from ssdkd.methods.streams import STREAM_ROLES, RandomStreams, stream_seed
from tests.methods.tiny import build, tiny_config


def test_stream_seeds_are_distinct_per_role_and_rank_and_reproducible() -> None:
    seeds = [stream_seed(5, role, rank) for rank in range(8) for role in STREAM_ROLES]
    assert len(set(seeds)) == 8 * len(STREAM_ROLES)
    assert seeds == [stream_seed(5, role, rank) for rank in range(8) for role in STREAM_ROLES]
    assert stream_seed(6, "synthesis") != stream_seed(5, "synthesis")
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, "student"), r"`role` to be one of .*, got 'student'"),
        ((-1, "synthesis"), r"non-negative `seed` and `rank`, got -1 and 0"),
        ((0, "synthesis", -2), r"non-negative `seed` and `rank`, got 0 and -2"),
    ],
)
def test_a_bad_role_seed_or_rank_is_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stream_seed(*args)


def test_streams_do_not_touch_the_global_random_state() -> None:
    before = torch.get_rng_state()
    streams = RandomStreams(0, "cpu")
    torch.rand(3, generator=streams.synthesis)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_bad_state_is_refused_and_leaves_the_streams_unchanged() -> None:
    streams = RandomStreams(0, "cpu")
    before = streams.state_dict()
    with pytest.raises(ValueError, match=r"roles \['synthesis', 'kd_augmentation', 'transfer'\]"):
        streams.load_state_dict({"synthesis": before["synthesis"]})
    bad = dict(before, transfer=torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="generator state for every role"):
        streams.load_state_dict(bad)
    after = streams.state_dict()
    assert all(torch.equal(after[role], before[role]) for role in STREAM_ROLES)


def _run(method: object, rounds: int = 3) -> None:
    for round_index in range(rounds):
        method.synthesize(round_index)  # type: ignore[attr-defined]
        for _ in range(3):
            method.distill_step()  # type: ignore[attr-defined]


def test_ssdkd_refresh_policies_share_synthesis_and_augmentation_draws() -> None:
    """Regression: with one stream for everything, the reservoir policy's slot draws
    shifted every later latent and target, so a refresh-policy ablation also changed
    what was synthesised."""
    base = tiny_config(next(spec for spec in REGISTRY if spec.name == "ssd-kd"))
    fifo = build(SSDKD, dataclasses.replace(base, refresh_policy="fifo", buffer_size=16))
    reservoir = build(SSDKD, dataclasses.replace(base, refresh_policy="reservoir", buffer_size=16))
    _run(fifo)
    _run(reservoir)
    for role in ("synthesis", "kd_augmentation"):
        assert torch.equal(
            getattr(fifo.streams, role).get_state(), getattr(reservoir.streams, role).get_state()
        ), role
    assert not torch.equal(
        fifo.streams.transfer.get_state(), reservoir.streams.transfer.get_state()
    )


def test_fast_dfkd_mixup_ablation_shares_synthesis_and_transfer_draws() -> None:
    """Regression: with one stream, mixup's draws shifted the pool's KD batches and the
    next round's latents, so a mixup ablation also changed the data it was given."""
    base = tiny_config(next(spec for spec in REGISTRY if spec.name == "fast-dfkd"))
    plain = build(FastDFKD, dataclasses.replace(base, kd_mixup=False))
    mixed = build(FastDFKD, dataclasses.replace(base, kd_mixup=True))
    _run(plain)
    _run(mixed)
    for role in ("synthesis", "transfer"):
        assert torch.equal(
            getattr(plain.streams, role).get_state(), getattr(mixed.streams, role).get_state()
        ), role


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda spec: spec.name)
def test_a_state_with_one_shared_stream_is_refused(spec: MethodSpec) -> None:
    """Regression: a checkpoint written before the streams were split would resume with
    fresh streams, silently not the run it continues."""
    method = build(spec.method_class, tiny_config(spec))
    state = method.state_dict()  # type: ignore[attr-defined]
    old = {k: v for k, v in state.items() if k != "streams"}
    old["generator"] = state["streams"]["synthesis"]
    with pytest.raises(ValueError, match="per-role random streams"):
        method.load_state_dict(old)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "switch",
    [{"priority_sampling": False}, {"priority_form": "kl"}, {"kd_augment": False}],
    ids=lambda switch: next(iter(switch)),
)
def test_arms_differing_in_a_kd_side_switch_synthesise_the_same_first_round(
    switch: dict[str, object],
) -> None:
    """Regression: a paired study's arms are only paired if a switch on the student's
    side leaves the synthesis alone; with one stream for everything the KD draws
    shifted the next latents, so the arms' generators saw different noise after the
    first round and a seed's luck did not cancel in their difference."""
    base = dataclasses.replace(
        tiny_config(next(spec for spec in REGISTRY if spec.name == "ssd-kd")), buffer_size=16
    )
    configs = [base, dataclasses.replace(base, **switch), base]
    arms = [
        build(SSDKD, config, seed=seed) for config, seed in zip(configs, (3, 3, 4), strict=True)
    ]
    first = []
    for method in arms:
        method.synthesize(0)  # type: ignore[attr-defined]
        first.append(method.buffer.data["images"].clone())  # type: ignore[attr-defined]
        for _ in range(3):
            method.distill_step()  # type: ignore[attr-defined]
        method.synthesize(1)  # type: ignore[attr-defined]
    assert torch.equal(first[0], first[1])
    assert not torch.equal(first[0], first[2])  # another seed: the check can fail
    # The arms drew as many synthesis numbers in the second round too.
    states = [method.streams.synthesis.get_state() for method in arms[:2]]  # type: ignore[attr-defined]
    assert torch.equal(*states)
