"""What the names and values of logged metrics mean, for everything that reads them back.

``<stage>/<name>`` (``test/acc``, ``val/loss``, ``val/acc_best``) is an overall metric;
``<stage>/<name>/<class>`` (``test/f1/7``) a per-class one; ``time/...`` are timings, and
``diagnostics/...`` training diagnostics. Numbers are float32 values kept with the fewest
digits that read back as the same float32, so metrics.json, history.csv and the reports print
the same figure.
"""

import numpy as np

STAGES = ("train", "val", "test")
TIMING_PREFIX = "time/"


def is_overall_metric(name: str) -> bool:
    """test/acc, val/acc_best, train/loss; not test/f1/7, time/train_epoch_s or lr-Adam."""
    stage, _, rest = name.partition("/")
    return stage in STAGES and bool(rest) and "/" not in rest


def is_timing(name: str) -> bool:
    return name.startswith(TIMING_PREFIX)


def shortest_float32(value: float) -> float:
    """A float32 value as the shortest decimal that reads back as the same float32 (0.9738,
    not 0.9738000035285950)."""
    return float(str(np.float32(value)))  # numpy prints float32 as the shortest round trip
