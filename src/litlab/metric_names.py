"""What the names and values of logged metrics mean, for everything that reads them back.

``<stage>/<name>`` (``test/acc``, ``val/loss``, ``val/acc_best``) is an overall metric;
``<stage>/<name>/<class>`` (``test/f1/7``) a per-class one; ``time/...`` are timings,
``model/...`` facts of the network (``model/params``, a search's possible second objective),
and ``diagnostics/...`` training diagnostics. Numbers are float32 values kept with the fewest
digits that read back as the same float32, so metrics.json, history.csv and the reports print
the same figure.
"""

import numpy as np

STAGES = ("train", "val", "test")
TIMING_PREFIX = "time/"
MODEL_PREFIX = "model/"
PARAMETER_COUNT = f"{MODEL_PREFIX}params"  # in metrics.json: the network's parameters

# What each kind of problem (data.task) logs per stage besides <stage>/loss; the first is the
# headline (training logs it alone, the progress bar and the learning curves show it).
TASK_METRICS = {
    "multiclass": ("acc", "precision", "recall", "f1"),
    "binary": ("acc", "precision", "recall", "f1"),
    "regression": ("mae", "mse", "r2"),
}
TASKS = tuple(TASK_METRICS)  # the kinds of problem, data.task
# Multiclass validation and test also log these per class: <stage>/<metric>/<class name>.
PER_CLASS_METRICS = ("precision", "recall", "f1")


def class_names_or_indices(names: list | None, num_classes: int | None) -> list[str] | None:
    """The names of per-class metrics: data.class_names, or "0", "1", ... when it is null."""
    if names is not None:
        return [str(name) for name in names]
    return [str(index) for index in range(num_classes)] if num_classes else None


def headline_metric(task: str) -> str:
    return TASK_METRICS[task][0]


def validation_metrics(task: str, class_names: list[str] | None = None) -> list[str]:
    """Every metric a run of this kind logs after validation: what best.ckpt, early stopping
    and a sweep can monitor."""
    names = ["val/loss", *(f"val/{name}" for name in TASK_METRICS[task])]
    if task == "multiclass":
        names += [
            f"val/{name}/{label}" for name in PER_CLASS_METRICS for label in class_names or []
        ]
    return names


def epoch_metrics(task: str, class_names: list[str] | None = None) -> list[str]:
    """Every metric a fitting run logs each epoch: validation's and training's loss and
    headline (what any callback may monitor)."""
    return [*validation_metrics(task, class_names), "train/loss", f"train/{headline_metric(task)}"]


def is_overall_metric(name: str) -> bool:
    """test/acc, val/acc_best, train/loss; not test/f1/7, time/train_epoch_s or lr-Adam."""
    stage, _, rest = name.partition("/")
    return stage in STAGES and bool(rest) and "/" not in rest


def is_timing(name: str) -> bool:
    return name.startswith(TIMING_PREFIX)


def is_model_fact(name: str) -> bool:
    return name.startswith(MODEL_PREFIX)


def shortest_float32(value: float) -> float:
    """A float32 value as the shortest decimal that reads back as the same float32 (0.9738,
    not 0.9738000035285950)."""
    return float(str(np.float32(value)))  # numpy prints float32 as the shortest round trip
