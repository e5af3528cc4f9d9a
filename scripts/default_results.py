"""Train every compatible pair of shipped data set and model at its defaults, as a user types it
(`python train.py data=X model=Y`), and print a Markdown table: the test result and the seconds
the whole command took. docs/results.md keeps the table ("Every data set with every model"),
with two columns added by hand: the best result the docs show for the pair, and a note;
tests/test_default_results.py checks it.

    python scripts/default_results.py                    # every pair (~25 min on 2 cores)
    python scripts/default_results.py --data iris,wine --model mlp --seeds 42,43,44
    python scripts/default_results.py --out results.json

A pair whose data files are absent (Fashion-MNIST, KMNIST: torchvision downloads them) is
listed as not run. Runs in a temporary folder; nothing is written into outputs/.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from litlab.config.catalog import shipped_options  # noqa: E402
from litlab.config.parts import compatible_pairs  # noqa: E402
from litlab.data.mnist import DATASETS, RAW_FILES  # noqa: E402


def table_metric(option: dict) -> str:
    """The test metric the table shows: accuracy, or R2 for regression."""
    return "test/r2" if option["task"] == "regression" else "test/acc"


def data_files_present(option: dict) -> bool:
    """MNIST-format data sets need their files (torchvision downloads them when absent)."""
    source = DATASETS.get(option.get("dataset"))
    if source is None:
        return True
    raw = Path(os.environ["LITLAB_DATA_DIR"]) / source.__name__ / "raw"
    return all((raw / name).is_file() for name in RAW_FILES)


def run_pair(data: str, model: str, seed: int, folder: Path) -> dict:
    run_dir = folder / f"{data}-{model}-{seed}"
    command = [
        sys.executable,
        "train.py",
        f"data={data}",
        f"model={model}",
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"metrics": metrics, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="comma-separated data options (default: all)")
    parser.add_argument("--model", help="comma-separated model options (default: all)")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default: 42)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    wanted_data = set(args.data.split(",")) if args.data else None
    wanted_model = set(args.model.split(",")) if args.model else None
    seeds = [int(seed) for seed in args.seeds.split(",")]
    os.environ.setdefault("LITLAB_DATA_DIR", str(PROJECT_ROOT.parent / "shared" / "data"))

    data_options = shipped_options("data")
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="litlab-defaults-") as tmp:
        for data, model in compatible_pairs():
            if data not in (wanted_data or {data}) or model not in (wanted_model or {model}):
                continue
            metric = table_metric(data_options[data])
            if not data_files_present(data_options[data]):
                rows.append(f"| {data} | {model} | {metric} | not run: files absent | |")
                continue
            runs = [run_pair(data, model, seed, Path(tmp)) for seed in seeds]
            results[f"{data}/{model}"] = runs
            failed = [run["error"] for run in runs if "error" in run]
            seconds = statistics.median(run["seconds"] for run in runs)
            if failed:
                failure = f"failed: {failed[0]}"
                rows.append(f"| {data} | {model} | {metric} | {failure} | {seconds:.0f} |")
                continue
            values = [run["metrics"][metric] for run in runs]
            shown = (
                f"{values[0]:.4g}"
                if len(values) == 1
                else (f"{statistics.mean(values):.4g} ({min(values):.4g} to {max(values):.4g})")
            )
            rows.append(f"| {data} | {model} | {metric} | {shown} | {seconds:.0f} |")
            print(rows[-1], file=sys.stderr, flush=True)
    print("| data | model | metric | default result | seconds |")
    print("|---|---|---|---:|---:|")
    print("\n".join(rows))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
