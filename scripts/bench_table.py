"""Markdown tables from bench.py's JSON files (and a pytest log): what the README's speed section
and scripts/gpu_check.sh print.

    python scripts/bench_table.py bench.json [more.json ...] [pytest.log]
"""

import json
import sys
from pathlib import Path


def machine_line(machine: dict) -> str:
    return (
        f"{machine['date']}, {machine['device']}, {machine['cpu_threads']} CPU threads, "
        f"torch {machine['torch']}, Lightning {machine['lightning']}"
    )


def step_table(results: list[dict]) -> list[str]:
    lines = ["| model | pipeline | s/epoch | samples/s | vs raw |", "|---|---|---|---|---|"]
    for row in results:
        lines.append(
            f"| {row['model']} | {row['pipeline']} | {row['epoch_s']:.3f} | "
            f"{row['samples_per_s']:,.0f} | {row['vs_raw']:.2f}x |"
        )
    for model in dict.fromkeys(row["model"] for row in results):
        by = {row["pipeline"]: row["epoch_s"] for row in results if row["model"] == model}
        lines.append(
            f"\n{model}: litlab/raw {by['litlab'] / by['raw']:.2f}x, classic/litlab "
            f"{by['classic'] / by['litlab']:.1f}x"
        )
    return lines


def whole_run_table(results: list[dict]) -> list[str]:
    lines = [
        "| model | raw train+validate | litlab epoch (whole commands) | ratio | epoch clock | "
        "to first step | litlab's own start-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['raw_train_validate_s']:.3f} s | {r['whole_run_epoch_s']:.3f} s"
            f" | {r['whole_run_vs_raw']:.2f}x | {r['clock_epoch_s']:.3f} s "
            f"({r['clock_vs_raw']:.2f}x) | {r['to_first_step_s']:.2f} s | "
            f"{r['startup']['litlab_work_s']:.2f} s |"
        )
    for r in results:
        lines += [
            f"\n{r['model']}: seconds per epoch inside each callback's hooks (Lightning's "
            "SimpleProfiler, one run)",
            "",
            "| callback | s/epoch | of the raw epoch |",
            "|---|---|---|",
        ]
        for name, seconds in r["profiled_per_epoch_s"].items():
            if name != "EpochClock" and seconds >= 0.002:
                share = seconds / r["raw_train_validate_s"]
                lines.append(f"| {name} | {seconds:.3f} | {share:.1%} |")
        if not r["saves_per_epoch_s"]:
            continue
        lines += [
            f"\n{r['model']}: what turning each default off saves per epoch",
            "",
            "| turned off | s/epoch | saves | of the raw epoch |",
            "|---|---|---|---|",
            f"| nothing (defaults) | {r['per_epoch_s']['default']:.3f} | | |",
        ]
        for name, saved in r["saves_per_epoch_s"].items():
            lines.append(
                f"| {name.removeprefix('no ')} | {r['per_epoch_s'][name]:.3f} | {saved:+.3f} s | "
                f"{saved / r['raw_train_validate_s']:+.0%} |"
            )
    return lines


def speedrun_table(result: dict) -> list[str]:
    lines = [
        "| speedrun | training images | training s (median) | us/image | test acc mean ± std |"
        " min |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result.items():
        if isinstance(r, dict):
            lines.append(
                f"| {name} | {r['train_images']:,} | {r['train_s_median']:.2f} | "
                f"{r['us_per_image']:.1f} | {r['test_acc_mean']:.2%} ± {r['test_acc_std']:.2%} "
                f"(n={len(r['test_acc'])}) | {r['test_acc_min']:.2%} |"
            )
    lines.append(f"\nlitlab / raw training time: {result['litlab_vs_raw']:.2f}x")
    return lines


def tables(path: Path) -> list[str]:
    if path.suffix != ".json":
        summary = [line for line in path.read_text().splitlines() if " in " in line and "=" in line]
        return [f"pytest -m gpu: {summary[-1].strip('= ') if summary else 'no summary line'}"]
    report = json.loads(path.read_text())
    lines = [f"**{path.name}** ({machine_line(report['machine'])})", ""]
    if "results" in report:
        lines += step_table(report["results"])
    if "whole_run" in report:
        lines += whole_run_table(report["whole_run"])
    if "speedrun" in report:
        lines += speedrun_table(report["speedrun"])
    return lines


def main() -> None:
    for name in sys.argv[1:]:
        path = Path(name)
        print("\n".join(tables(path)) if path.exists() else f"{name}: missing")
        print()


if __name__ == "__main__":
    main()
