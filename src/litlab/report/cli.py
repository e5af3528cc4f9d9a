"""`litlab-report PATH`: rebuild report.md and plots/ of a run folder, or the summary of a sweep
folder, from the files on disk."""

import argparse
import sys
from pathlib import Path

from litlab.report.run import is_run_folder, write_run_report
from litlab.report.sweep import is_sweep_folder, write_sweep_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="litlab-report", description=__doc__)
    parser.add_argument("path", type=Path, help="a run folder or a multirun (sweep) folder")
    path = parser.parse_args(argv).path
    if not path.is_dir():
        return _fail(
            f"{path} is not a folder. Give a run folder (outputs/<task>/runs/<time>) or "
            "a sweep folder (outputs/<task>/multiruns/<time>)."
        )
    try:
        if is_run_folder(path):
            report, missing = write_run_report(path)
            print(f"Wrote {report} and its plots in {path / 'plots'}")
            if missing:
                print(
                    f"Incomplete run: {', '.join(missing)} missing or unreadable; the report "
                    "covers what exists."
                )
            return 0
        if is_sweep_folder(path):
            written = write_sweep_summary(path)
            print("Wrote " + ", ".join(str(file) for file in written))
            return 0
    except Exception as err:  # noqa: BLE001 - damaged files the readers did not foresee
        return _fail(
            f"could not build the report for {path}: {type(err).__name__}: {err}. A file in "
            "the folder is probably damaged or was edited by hand; the traceback is not shown."
        )
    return _fail(
        f"{path} is neither a run folder (it has no config.yaml or .hydra/config.yaml) nor a "
        "sweep folder (no multirun.yaml, no job folders with .hydra/overrides.yaml). Point "
        "litlab-report at a folder that `python train.py` (a run) or `python train.py -m` "
        "(a sweep) made under outputs/."
    )


def _fail(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 2


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
