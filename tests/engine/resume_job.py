"""A tiny SSD-KD run in its own process, optionally killed mid-run (used by test_runner)."""

from __future__ import annotations

import argparse
import os

import torch

from ssdkd.engine import atomic_save
from ssdkd.engine.runner import run_rounds
from ssdkd.methods import SSDKD
from tests.methods.tiny import TINY_SSDKD, build


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-round", type=int, default=-1, help="0-based round to die in")
    parser.add_argument("--kill-after-steps", type=int, default=0, help="KD steps before dying")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    method = build(SSDKD, TINY_SSDKD)
    if args.kill_round >= 0:
        synthesize, distill_step = method.synthesize, method.distill_step
        state = {"round": -1, "steps": 0}

        def dying_synthesize(round_index: int) -> dict[str, float]:
            state["round"], state["steps"] = round_index, 0
            if round_index == args.kill_round and args.kill_after_steps == 0:
                os._exit(3)
            return synthesize(round_index)

        def dying_distill_step() -> dict[str, float]:
            state["steps"] += 1
            if state["round"] == args.kill_round and state["steps"] > args.kill_after_steps:
                os._exit(3)
            return distill_step()

        method.synthesize = dying_synthesize  # type: ignore[method-assign]
        method.distill_step = dying_distill_step  # type: ignore[method-assign]
    run_rounds(method, run_dir=args.run_dir, resume=args.resume, progress=False)
    atomic_save(
        {
            "student": method.student.state_dict(),
            "generator": method.synthesis.meta.state_dict(),
            "buffer": method.buffer.state_dict(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
