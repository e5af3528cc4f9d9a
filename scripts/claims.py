"""Rerun the claim tests (`pytest -m claim`: lessons, README figures, accuracy targets) under
changed floating-point paths and print each claim's value on every path and its margin.

    python scripts/claims.py                     # the fast claims on every path (~15 min)
    python scripts/claims.py --slow              # and the real-MNIST ones (an hour or more)
    python scripts/claims.py --paths as_is,avx2 -k lesson_4
    python scripts/claims.py --all --paths avx2  # the whole fast suite on one path

A claim's outcome moves when the order of floating-point operations changes: another CPU picks
other kernels (CI failed on an Intel Xeon for a claim measured on AMD EPYC), a reduction is
split over another number of threads, oneDNN's convolution replaces ATen's. Each path below
changes one of these through the libraries' own switches, in every Python process the tests
start (environment variables; oneDNN through a sitecustomize module). "seed+1" changes the seed
instead, the larger perturbation: a claim about one seed's run must survive it too. A bound
that a claim keeps on every path, with room to spare, is one that another machine keeps too.

The tests record their values through tests.helpers.claim into LITLAB_CLAIMS_LOG. Exit status
1 if a claim failed on some path. Prints a Markdown table; --out writes the values as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name: (what it changes, environment)
PATHS = {
    "as_is": ("this machine's defaults", {}),
    "1_thread": (
        "one thread: reductions and matrix products not split between cores",
        {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    ),
    "avx2": (
        "a CPU without AVX-512: ATen's, oneDNN's and MKL's AVX2 kernels",
        {
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        },
    ),
    "mkl_compatible": (
        "MKL's most compatible (SSE) code path, the matrix products of an older CPU",
        {"MKL_CBWR": "COMPATIBLE"},
    ),
    "no_onednn": (
        "oneDNN off (torch.backends.mkldnn.enabled=False): ATen's own convolutions",
        {"LITLAB_CLAIMS_NO_ONEDNN": "1"},
    ),
    "seed+1": (
        "every seed one higher (runs the tests compose in-process; not lesson 2's sweep)",
        {"LITLAB_CLAIMS_SEED_SHIFT": "1"},
    ),
}

SITECUSTOMIZE = """\
# Written by scripts/claims.py: the path "no_onednn" in every Python process the tests start,
# set once torch has been imported (a process that never imports torch stays without it).
import builtins
import os
import sys

if os.environ.get("LITLAB_CLAIMS_NO_ONEDNN") == "1":
    _import = builtins.__import__

    def _turn_onednn_off(name, *args, **kwargs):
        module = _import(name, *args, **kwargs)
        torch = sys.modules.get("torch")
        mkldnn = getattr(getattr(torch, "backends", None), "mkldnn", None)
        if mkldnn is not None and hasattr(torch, "nn"):  # torch has finished loading
            mkldnn.enabled = False
            builtins.__import__ = _import
        return module

    builtins.__import__ = _turn_onednn_off
"""


def run_path(name: str, selection: list[str], workdir: Path) -> tuple[list[dict], int, float]:
    """Run the selected claim tests under one path: (recorded claims, pytest's status, seconds)."""
    log = workdir / f"{name}.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, **PATHS[name][1], "LITLAB_CLAIMS_LOG": str(log)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    # -n 0: in one process, with the machine's own threads, as `python train.py` runs
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider"]
    command += selection
    print(f"-- {name}: {PATHS[name][0]}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"   {summary[0]} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    failures = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    for line in failures:
        print(f"   {line}", file=sys.stderr)
    if result.returncode not in (0, 1):  # 1: a test failed, listed above
        print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return rows, result.returncode, seconds


def margin(row: dict) -> float:
    """How far the value lies inside its bounds (negative: the claim failed)."""
    gaps = []
    if row["above"] is not None:
        gaps.append(row["value"] - row["above"])
    if row["below"] is not None:
        gaps.append(row["below"] - row["value"])
    return min(gaps)


def bound_text(row: dict) -> str:
    parts = []
    if row["above"] is not None:
        parts.append(f"> {row['above']:.4g}")
    if row["below"] is not None:
        parts.append(f"< {row['below']:.4g}")
    return " and ".join(parts)


def table(results: dict[str, list[dict]]) -> str:
    claims: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for path, rows in results.items():
        for row in rows:
            claims[(row["test"].split("::", 1)[-1], row["claim"])][path] = row
    paths = list(results)
    lines = [
        "| test | claim | bound | " + " | ".join(paths) + " | smallest margin |",
        "|---|---|---|" + "---:|" * (len(paths) + 1),
    ]
    for (test, name), by_path in claims.items():
        any_row = next(iter(by_path.values()))
        values = [f"{by_path[p]['value']:.4g}" if p in by_path else "-" for p in paths]
        smallest = min(margin(row) for row in by_path.values())
        lines.append(
            f"| {test} | {name} | {bound_text(any_row)} | {' | '.join(values)} | {smallest:.3g} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="comma-separated: " + ", ".join(PATHS)
    )
    parser.add_argument("--slow", action="store_true", help="also the real-MNIST claims")
    parser.add_argument(
        "--all", action="store_true", help="every test, not only the claims (a path's failures)"
    )
    parser.add_argument("-k", default=None, help="pytest's -k expression")
    parser.add_argument("--out", type=Path, default=None, help="write the values as JSON here")
    args = parser.parse_args()
    paths = args.paths.split(",")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")

    kind = "not gpu" if args.all else "claim"
    selection = ["-m", kind if args.slow else f"{kind} and not slow"]
    selection += ["-k", args.k] if args.k else []
    results, failed = {}, False
    with tempfile.TemporaryDirectory(prefix="litlab-claims-") as tmp:
        workdir = Path(tmp)
        (workdir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        for name in paths:
            rows, status, _ = run_path(name, selection, workdir)
            results[name] = rows
            failed |= status != 0
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
