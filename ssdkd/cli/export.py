"""``ssdkd export``: a run's final student as a file that runs without ssdkd."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ssdkd.cli._args import HelpFormatter, Subparsers


def _add_export(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run's final student (torch.export .pt2, or ONNX)",
        description="Rebuild the final student of a run (RUN/student.pt, written by "
        "`ssdkd distill`) and export it with a dynamic batch size: as a torch.export "
        "program (.pt2; load with torch.export.load(path).module()), or as ONNX where the "
        "onnx and onnxscript packages are installed. The exported network takes images "
        "normalised as (x - mean) / std with the mean and std it prints. TorchScript is "
        "not offered: torch deprecates torch.jit in favour of torch.export.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("source", metavar="RUN_OR_FILE", help="a run directory, or its student.pt")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    parser.add_argument("--format", choices=("pt2", "onnx"), default="pt2", help="export format")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from ssdkd.engine.student_file import load_student

    source = Path(args.source)
    model, meta = load_student(source / "student.pt" if source.is_dir() else source)
    example = torch.zeros(2, *meta["image_shape"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"Expected the packages {', '.join(missing)} for --format onnx (pip install "
                "onnx onnxscript), or use --format pt2"
            )
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            dynamo=True,
        )
    else:
        program = torch.export.export(
            model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)
        )
        torch.export.save(program, str(out))
    print(
        f"{out}: {meta['student_model']} of round {meta['round']}, images "
        f"{'x'.join(map(str, meta['image_shape']))} normalised with mean {meta['mean']} "
        f"and std {meta['std']}, {meta['num_classes']} logits"
    )
    return 0
