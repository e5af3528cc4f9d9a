"""The files of a run folder that reports are built from: their names, reading, and writing
them whole (a reader, or a crash, never meets half a file)."""

import csv
import math
import os
from pathlib import Path

import numpy as np

HISTORY = "history.csv"  # one row per finished epoch
REPORT_DATA = "report_data.json"  # data sizes, model summary, test results


COUNTS = ("epoch", "step")  # whole numbers in history.csv; every other column is a float


def read_history(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as file:
        return [
            {
                key: (int if key in COUNTS else float)(value) if value != "" else math.nan
                for key, value in row.items()
            }
            for row in csv.DictReader(file)
        ]


def write_atomically(path: Path, text: str) -> Path:
    """Write beside ``path`` and rename over it. The partial file's name carries the process
    id: jobs of a parallel sweep may rewrite the same summary at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def shortest_float32(value: float) -> float:
    """A float32 value as the shortest decimal that reads back as the same float32 (0.9738,
    not 0.9738000035285950): metrics.json, history.csv and the reports print the same figure."""
    return float(str(np.float32(value)))  # numpy prints float32 as the shortest round trip
