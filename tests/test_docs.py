"""The documentation: the site builds without a warning, its API reference renders every
public name, every Python block of the README and the pages runs, and every ``ssdkd``
command line the pages show parses."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("hooks", "losses", "sampling", "generators", "methods", "models", "data", "engine")

# Dated notes are records of their day: their code is not kept current.
PAGES = [
    ROOT / "README.md",
    *sorted(path for path in (ROOT / "docs").rglob("*.md") if "notes" not in path.parts),
]

# The blocks run as written except for these replacements, which shrink a published
# budget to seconds. Each must match exactly once, so a changed page fails here.
_TINY = (
    'dataclasses.replace(PRESETS["{method}"]["digits"], rounds=3, warmup_rounds={w}, kd_steps=5)'
)
SHRINK: dict[str, list[tuple[str, str]]] = {
    "docs/index.md": [
        (
            'recipe = dataclasses.asdict(TEACHER_RECIPES["digits"])',
            'recipe = dataclasses.asdict(TEACHER_RECIPES["digits"]) | {"epochs": 2}',
        ),
        ('config=PRESETS["ssd-kd"]["digits"]', "config=" + _TINY.format(method="ssd-kd", w=1)),
    ],
    "docs/guides/adding-a-method.md": [
        ("import ssdkd\n", "import dataclasses\n\nimport ssdkd\n"),
        (
            'config=PRESETS["real-data"]["digits"]',
            "config=" + _TINY.format(method="real-data", w=0),
        ),
    ],
    "docs/recipes/teachers.md": [
        (
            'config=PRESETS["ssd-kd"]["fashion-mnist"]',
            'config=__import__("dataclasses").replace(PRESETS["ssd-kd"]["fashion-mnist"], '
            "rounds=3, warmup_rounds=1, kd_steps=5, buffer_size=256)",
        ),
        (
            '**dataclasses.asdict(TEACHER_RECIPES["digits"])',
            '**(dataclasses.asdict(TEACHER_RECIPES["digits"]) | {"epochs": 2})',
        ),
    ],
}


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _python_blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    for old, new in SHRINK.get(_name(page), []):
        assert text.count(old) == 1, f"{_name(page)}: {old!r} should occur once"
        text = text.replace(old, new)
    # A snippet include ("--8<--") shows a file of the repository that its own test runs.
    return [b for b in _blocks(text, "python") if not b.startswith("--8<--")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p.read_text(encoding="utf-8"), "python")], ids=_name
)
def test_every_python_block_of_the_page_runs(page: Path, tmp_path: Path, monkeypatch) -> None:
    """Prevents an example drifting from the API: the blocks of a page run in order in
    one namespace, in an empty directory that sees the repository's tracked teacher."""
    blocks = _python_blocks(page)
    assert blocks
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    scope: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, _name(page), "exec"), scope)


def _command_lines(text: str) -> list[list[str]]:
    commands = []
    for block in _blocks(text, "bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("ssdkd "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_every_ssdkd_command_line_of_the_pages_parses() -> None:
    """Prevents a page teaching an option the command no longer has."""
    from ssdkd.cli import build_parser

    parser = build_parser()
    seen = 0
    for page in PAGES:
        for argv in _command_lines(page.read_text(encoding="utf-8")):
            if "..." in argv:
                continue  # an elided command line
            try:
                parser.parse_args(argv)
            except SystemExit as exc:
                pytest.fail(f"{_name(page)}: `ssdkd {' '.join(argv)}` does not parse ({exc})")
            seen += 1
    assert seen >= 10


@pytest.mark.slow
def test_site_builds_strict_and_the_reference_renders_every_public_name(tmp_path: Path) -> None:
    """Prevents a broken cross-reference, a missing page or a public name without an
    entry in the API reference (an undocumented module constant is not rendered)."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    for package in SUBPACKAGES:
        html = (site / "reference" / package / "index.html").read_text(encoding="utf-8")
        rendered = set(re.findall(r'id="(ssdkd\.[\w.]+)"', html))
        public = importlib.import_module(f"ssdkd.{package}").__all__
        missing = [name for name in public if f"ssdkd.{package}.{name}" not in rendered]
        assert not missing, f"ssdkd.{package}: not in the API reference: {missing}"
    assert 'id="ssdkd.distill"' in (site / "reference" / "index.html").read_text(encoding="utf-8")


README_RUNS = {
    "SSD-KD": "ssd-kd",
    "Fast-DFKD, Fast-2": "fast-2",
    "DeepInversion": "deepinversion",
    "NAYER": "nayer",
    "NAYER, text embeddings, 4 + 80 rounds": "nayer-text-long",
    "CMI": "cmi",
    "DFQ": "dfq",
    "DAFL": "dafl",
    "ZSKT": "zskt",
    "DFAD": "dfad",
    "noise control": "noise-control",
    "real data, the bound": "real-data",
}


def test_the_readme_results_table_says_what_the_study_files_hold() -> None:
    """Prevents the README's results table drifting from the run files the results page
    is generated from (accuracy median and range, seeds, images, minutes)."""
    summary = json.loads(
        (ROOT / "docs" / "results" / "efficiency_fashion-mnist" / "summary.json").read_text()
    )["methods"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| (.+?) \((\d+) seeds\) \| ([\d.]+) \(([\d.]+)–([\d.]+)\) \| ([\d,]+) \| ([\d.]+) \|$",
        readme,
        flags=re.MULTILINE,
    )
    assert [row[0] for row in rows] == list(README_RUNS)
    for label, seeds, median, low, high, images, minutes in rows:
        entry = summary[README_RUNS[label]]
        assert int(seeds) == len(entry["seeds"]), label
        shown = [float(median), float(low), float(high)]
        kept = [entry[f"final_accuracy_{key}"] for key in ("median", "min", "max")]
        assert shown == [round(100 * value, 2) for value in kept], label
        assert int(images.replace(",", "")) == round(entry["pool_images"]), label
        assert float(minutes) == round(entry["overall_seconds"] / 60, 1), label
