"""Regenerate every table of the results page (``docs/results.md``) from the stored run files.

Each benchmark writes its own section when it runs; this script redraws all of them from
the result files under ``docs/results/`` without rerunning anything, so the page always
says what the files hold:

    python benchmarks/results_page.py
    python benchmarks/results_page.py --page /tmp/results.md    # somewhere else

A section's date is the one its result file records, or, for files that record none, the
date of the git commit that last changed the file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import checkpoint_io
import distributed
import efficiency
import overhead
import sampling
from _common import ROOT, machine_line, shown_path, write_section
from _efficiency_report import same_machine_speed

RESULTS = ROOT / "docs" / "results"


def _recorded_date(path: Path, payload: dict[str, Any]) -> str:
    if "date" in payload:
        return str(payload["date"])
    shown = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "log",
            "-1",
            "--format=%cd",
            "--date=format:%Y-%m-%d",
            "--",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{shown} (commit date of its result file)" if shown else "date not recorded"


def speed_section(study: Path, same_machine: Path) -> str:
    """NAYER's time to Fast-2's final accuracy against Fast-2's, per seed, from the current
    runs of the study and of a directory of Fast-2 runs repeated on the machine NAYER ran
    on (the same teacher), paired only where both runs of a seed ran on one kind of
    machine; where no seed pairs, a section that says so and how to repeat Fast-2."""
    header, runs, _ = efficiency.current_runs(study, "fashion-mnist")
    other, more, _ = efficiency.current_runs(same_machine, "fashion-mnist")
    if other["teacher_fingerprint"] != header["teacher_fingerprint"]:
        return ""
    table = same_machine_speed(runs + more, "nayer", "fast-2")
    command = (
        "OMP_NUM_THREADS=2 python benchmarks/efficiency.py --dataset fashion-mnist "
        f"--study main --runs fast-2 --seeds SEED --results {shown_path(same_machine)}"
    )
    if not table:
        # Without this the section of an earlier preset's pairs would stand as if current.
        return "\n".join(
            [
                "No current pair: no current Fast-2 run ran on the kind of machine of a "
                f"current NAYER run of the same seed (run files `{shown_path(study)}/` and "
                f"`{shown_path(same_machine)}/`). Repeat Fast-2 where NAYER ran:",
                "",
                "```bash",
                command,
                "```",
            ]
        )
    machines = {machine_line(run["machine"]) for run in more}
    paired = [
        run
        for run in runs + more
        if run["name"] in ("nayer", "fast-2") and machine_line(run["machine"]) in machines
    ]
    dates = sorted({str(run["finished"])[:10] for run in paired})
    finished = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    return "\n".join(
        [
            f"Run files `{shown_path(study)}/` and `{shown_path(same_machine)}/` (Fast-2 repeated "
            f"where NAYER ran: `{command}`); runs finished {finished}.",
            "",
            table,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    page, results = args.page, args.results

    efficiency_dir = efficiency.results_directory(results, "fashion-mnist")
    if (efficiency_dir / "study.json").is_file():
        efficiency.report(
            efficiency.parse_args(
                [
                    "--dataset",
                    "fashion-mnist",
                    "--report-only",
                    "--study",
                    *efficiency.STUDIES,
                    "--results",
                    str(efficiency_dir),
                    "--markdown",
                    str(page),
                    "--figures",
                    str(page.parent / "figures"),
                ]
            )
        )
    same_machine = results / "efficiency_fashion-mnist_same-machine"
    if (same_machine / "study.json").is_file():
        body = speed_section(efficiency_dir, same_machine)
        if body:
            write_section(page, "speed-nayer-fashion-mnist", body)
    if (results / "sampling.json").is_file():
        payload = json.loads((results / "sampling.json").read_text())
        write_section(page, "sampling", sampling.markdown(payload))
    if (results / "overhead.json").is_file():
        payload = json.loads((results / "overhead.json").read_text())
        write_section(page, "overhead", overhead.markdown(payload))
    for student in ("tiny_cnn", "resnet18"):
        path = results / f"distributed_{student}.json"
        if path.is_file():
            payload = json.loads(path.read_text())
            body = distributed.report(
                payload["rows"],
                payload["machine"],
                payload["command"],
                _recorded_date(path, payload),
            )
            write_section(page, f"distributed-throughput-{student}", body)
    if (results / "checkpoint_io.json").is_file():
        payload = json.loads((results / "checkpoint_io.json").read_text())
        write_section(page, "checkpoint-io", checkpoint_io.markdown(payload))


if __name__ == "__main__":
    main()
