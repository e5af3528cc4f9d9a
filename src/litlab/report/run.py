"""report.md and plots/ of a run folder, built from the files in it alone.

Training writes the inputs (``config.yaml``, ``run.json``, ``history.csv``,
``report_data.json``, ``metrics.json``) and calls :func:`write_run_report` at its end;
``litlab-report <run>`` calls it again later, also for a run that stopped half way.
"""

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import OmegaConf

from litlab.config.checks import learning_rate_key
from litlab.config.losses import PER_SAMPLE_MEASURED, TORCH_LOSSES
from litlab.metric_names import (
    TASK_METRICS,
    TASKS,
    class_names_or_indices,
    headline_metric,
    is_model_fact,
    is_overall_metric,
    is_timing,
)
from litlab.report import plots
from litlab.report.diagnosis import Evidence, diagnose_fit, diagnose_training
from litlab.report_data import ReportData, read_report_data
from litlab.run_folder import (
    BATCH_PLOT,
    CONFIG,
    CONFUSION_MATRIX_PLOT,
    GRADIENT_BY_STEP_PLOT,
    HISTORY,
    HYDRA_RECORD,
    LR_FIND_PLOT,
    METRICS,
    PLOTS,
    REPORT,
    REPORT_DATA,
    RUN_RECORD,
    TOP_LOSSES_PLOT,
    read_history,
    read_job_status,
    read_json_object,
    write_atomically,
)

log = logging.getLogger(__name__)

# What each input file contributes, for the "missing" list of an incomplete run.
RUN_FILES = {
    CONFIG: "the resolved configuration (data, model, optimizer)",
    RUN_RECORD: "the command line and versions",
    HISTORY: "per-epoch metrics (learning curves, fit diagnosis)",
    REPORT_DATA: "the model summary, data sizes and test predictions",
    METRICS: "the final metrics (the run did not finish)",
}


@dataclass
class RunFolder:
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    data: ReportData = field(default_factory=ReportData)
    metrics: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # file name: why
    error: str = ""  # what ended the run, where a status.json records it (a sweep's job)

    @property
    def task(self) -> str:
        """The kind of problem, as the run declared it (report_data.json, else config.yaml)."""
        if self.data.data is not None:
            return self.data.data.task
        return self.config.get("data", {}).get("task", "")

    @property
    def loss_target(self) -> str:
        """The class the run's loss named (``torch.nn.MSELoss``); "" when unknown."""
        return (self.config.get("loss") or {}).get("_target_", "")

    @property
    def class_names(self) -> list[str]:
        config = self.config.get("data", {})
        names = self.data.data.class_names if self.data.data else config.get("class_names")
        num_classes = config.get("num_classes")
        indices = num_classes if isinstance(num_classes, int) else None
        return class_names_or_indices(names, indices) or []

    @property
    def split(self) -> str:
        """The split the run tested: test, or what eval.py was given (split=val)."""
        return self.data.test.split if self.data.test else "test"


def load_run(path: Path) -> RunFolder:
    """Read what the run folder holds. A file that cannot be read counts as missing, with the
    reason, so that the report covers the rest."""
    run = RunFolder(path)
    config = path / CONFIG
    if not config.is_file():
        config = path / HYDRA_RECORD / CONFIG  # a run that failed before training
    readers = {
        CONFIG: (config, lambda file: _plain(OmegaConf.load(file)), "config"),
        RUN_RECORD: (path / RUN_RECORD, read_json_object, "record"),
        HISTORY: (path / HISTORY, read_history, "history"),
        REPORT_DATA: (path / REPORT_DATA, read_report_data, "data"),
        METRICS: (path / METRICS, read_json_object, "metrics"),
    }
    for name, (file, read, attribute) in readers.items():
        if not file.is_file():
            run.missing.append(name)
            continue
        try:
            setattr(run, attribute, read(file))
        except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as err:
            run.missing.append(name)
            run.unreadable[name] = f"{type(err).__name__}: {err}".splitlines()[0]
    status = read_job_status(path)
    run.error = status.get("error", "") if status else ""
    trains = not run.record.get("evaluated") and not (run.config.get("tune") or {}).get("only")
    if not trains and HISTORY in run.missing:
        run.missing.remove(HISTORY)  # an evaluation, or tune.only: nothing was trained
    return run


def _plain(config: Any) -> dict[str, Any]:
    """The config as plain data; interpolations that need Hydra's runtime stay as text."""
    return OmegaConf.to_container(config, resolve=False)


def write_run_report(path: Path) -> tuple[Path, list[str]]:
    """Draw plots/ and write report.md for the run folder ``path``; returns the report's path
    and the input files that were missing (their sections say so)."""
    run = load_run(path)
    figures = draw_run_plots(run)
    report = write_atomically(path / REPORT, "\n".join(report_lines(run, figures)) + "\n")
    return report, run.missing


def write_run_report_or_warn(path: Path) -> None:
    """:func:`write_run_report` at the end of a run, whose results are safe in metrics.json by
    then: a failure here is a warning, not a failed run."""
    try:
        report, _ = write_run_report(path)
        log.debug("Report: %s", report)  # the command's last line names it
    except Exception as err:  # noqa: BLE001
        log.warning(
            "The run finished but report.md could not be written (%s: %s); rebuild it with "
            "`litlab-report %s`.",
            type(err).__name__,
            err,
            path,
        )


def draw_run_plots(run: RunFolder) -> dict[str, Path]:
    """The run's figures. The confusion matrix and misclassified images that the run's
    callbacks drew are linked as they are; a missing confusion matrix is drawn from
    report_data.json."""
    figures: dict[str, Path] = {}
    plot_dir = run.path / PLOTS
    if run.history:
        metric = headline_metric(run.task) if run.task in TASK_METRICS else "acc"
        fig = plots.learning_curves_figure(run.history, metric)
        figures["learning curves"] = plots.save(fig, plot_dir / "learning_curves.png")
    test = run.data.test
    confusion = plot_dir / CONFUSION_MATRIX_PLOT
    if confusion.is_file():
        figures["confusion matrix"] = confusion
    elif test and test.confusion_matrix and run.class_names:
        matrix = np.array(test.confusion_matrix)
        image = plots.confusion_matrix_image(matrix, run.class_names, "test confusion matrix", 2)
        figures["confusion matrix"] = plots.save_image(image, confusion)
    f1 = _per_class(run, "f1")
    if f1:
        fig = plots.per_class_figure(list(f1), list(f1.values()), f"{run.split} F1")
        figures["per-class F1"] = plots.save(fig, plot_dir / "per_class_f1.png")
    if test and test.true and test.predicted:
        true, predicted = np.array(test.true), np.array(test.predicted)
        fig = plots.predicted_vs_true_figure(true, predicted)
        figures["predicted vs true"] = plots.save(fig, plot_dir / "predicted_vs_true.png")
        figures["residuals"] = plots.save(
            plots.residuals_figure(true, predicted), plot_dir / "residuals.png"
        )
    if (plot_dir / TOP_LOSSES_PLOT).is_file():  # drawn at test time, from the images
        figures[f"{run.split} samples with the highest loss"] = plot_dir / TOP_LOSSES_PLOT
    if (plot_dir / BATCH_PLOT).is_file():  # drawn at the first training step
        figures["the first training batch"] = plot_dir / BATCH_PLOT
    if (plot_dir / LR_FIND_PLOT).is_file():  # drawn before training, tune=lr_find
        figures["learning-rate finder"] = plot_dir / LR_FIND_PLOT
    if (plot_dir / GRADIENT_BY_STEP_PLOT).is_file():  # drawn during training
        figures["gradient by time step"] = plot_dir / GRADIENT_BY_STEP_PLOT
    return figures


def _per_class(run: RunFolder, name: str) -> dict[str, float]:
    """``{class name: value}`` of ``<split>/<name>/<class>`` in metrics.json, in class order."""
    return {
        label: run.metrics[f"{run.split}/{name}/{label}"]
        for label in run.class_names
        if f"{run.split}/{name}/{label}" in run.metrics
    }


def report_lines(run: RunFolder, figures: dict[str, Path]) -> list[str]:
    kind = "Evaluation" if run.record.get("evaluated") else "Run"
    lines = [f"# {kind} report: {run.path.name}", ""]
    lines += _summary_lines(run)
    lines += _data_lines(run)
    lines += _batch_lines(run)
    lines += _model_lines(run)
    lines += _lr_find_lines(run)
    lines += _results_lines(run)
    lines += _per_class_lines(run)
    lines += _most_confused_lines(run)
    lines += _top_losses_lines(run)
    lines += _diagnosis_lines(run)
    if figures:
        lines += ["## Figures", ""]
        for title, figure in figures.items():
            relative = figure.relative_to(run.path).as_posix()
            lines += [f"### {title.capitalize()}", "", f"![{title}]({relative})", ""]
    return lines


def _summary_lines(run: RunFolder) -> list[str]:
    data = run.config.get("data", {}).get("_target_", "?").rsplit(".", 1)[-1]
    model = run.config.get("model", {}).get("_target_", "?").rsplit(".", 1)[-1]
    finished = METRICS not in run.missing
    lines = [
        f"- Status: {'finished' if finished else f'did not finish (no {METRICS})'}"
        + (f"; failed with {run.error}" if run.error else ""),
        f"- Task: {run.task or '?'}; model {model}; data {data}",
    ]
    evaluated = run.record.get("evaluated")
    if evaluated:
        lines.append(f"- Evaluated: `{evaluated['ckpt_path']}` on the {evaluated['split']} split")
    if run.record:
        lines.append(f"- Command: `{run.record.get('command', '?')}`")
        lines.append(f"- Started: {run.record.get('started', '?')}")
    if run.missing:
        lines.append("- Missing files (sections that need them are left out):")
        for name in run.missing:
            why = f" (unreadable: {run.unreadable[name]})" if name in run.unreadable else ""
            lines.append(f"  - `{name}`: {RUN_FILES[name]}{why}")
    lines += _partial_data_notes(run)
    return [*lines, ""]


# Trainer settings under which a run sees only part of its data.
PARTIAL_DATA_KEYS = (
    "fast_dev_run",
    "overfit_batches",
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
)


def _partial_data_notes(run: RunFolder) -> list[str]:
    trainer = run.config.get("trainer") or {}
    limits = [
        f"trainer.{key}={trainer[key]}"
        for key in PARTIAL_DATA_KEYS
        if _limits(key, trainer.get(key))
    ]
    if not limits:
        return []
    return [
        f"- Only part of the data was used ({', '.join(limits)}): the split sizes below are "
        "the data set's, not what was trained or evaluated on."
    ]


def _limits(key: str, value: Any) -> bool:
    if key == "fast_dev_run" or value is None or isinstance(value, bool):
        return bool(value)
    if key == "overfit_batches":
        return value != 0
    return isinstance(value, int) or value != 1.0  # an int counts batches; 1.0 is everything


def _data_lines(run: RunFolder) -> list[str]:
    data = run.data.data
    if not data:
        return []
    splits = ", ".join(f"{name} {count:,}" for name, count in data.splits.items())
    lines = ["## Data", "", f"- {data.name}: {splits} samples"]
    if data.input_shape:
        lines.append(f"- Input shape: {tuple(data.input_shape)}")
    else:
        lines.append(f"- Features: {data.num_features}")
    if run.class_names:
        lines.append(f"- Classes ({len(run.class_names)}): {', '.join(run.class_names)}")
    lines += [f"- Prepared: {note}" for note in data.notes]
    return [*lines, ""]


def _batch_lines(run: RunFolder) -> list[str]:
    """What the model sees: for images, plots/batch.png (under Figures); for tabular and
    sequence data, the first training batch's feature statistics."""
    batch = run.data.batch
    if not batch:
        return []
    shown = len(batch.features)
    more = f" (the first {shown} of {batch.num_features})" if shown < batch.num_features else ""
    scale = (
        ": standardised with the training split's statistics, so mean near 0 and std near 1"
        if batch.standardised
        else ", as the data set holds it (not standardised)"
    )
    lines = [
        "## What the model sees",
        "",
        f"The first training batch ({batch.samples} samples) as it enters the model, per "
        f"feature{more}{scale}.",
        "",
        "| Feature | Mean | Std | Min | Max |",
        "|---|---:|---:|---:|---:|",
    ]
    for feature in batch.features:
        lines.append(
            f"| {feature.name} | {feature.mean:.3g} | {feature.std:.3g} | "
            f"{feature.min:.3g} | {feature.max:.3g} |"
        )
    return [*lines, ""]


def _model_lines(run: RunFolder) -> list[str]:
    model = run.data.model
    if not model:
        return []
    lines = [
        "## Model",
        "",
        f"{model.name}: {model.total_params:,} parameters ({model.trainable_params:,} trainable).",
        "",
        "| Layer | Type | Output shape | Parameters |",
        "|---|---|---|---:|",
    ]
    for layer in model.layers:
        shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else ""
        lines.append(f"| {layer.name} | {layer.type} | {shape} | {layer.params:,} |")
    return [*lines, ""]


def _lr_find_lines(run: RunFolder) -> list[str]:
    test = run.data.lr_find
    if not test:
        return []
    suggestion = test.suggestion
    if suggestion is None:
        found = "found no steepest descent: the loss did not fall over the range tested"
    else:
        found = f"suggests **lr = {suggestion:.3g}** (where the loss fell fastest)"
    lr_range = f"{min(test.lr):.3g} to {max(test.lr):.3g}" if test.lr else "?"
    if METRICS not in run.missing and not run.history:
        applied = "no training followed (tune.only)"
    elif test.applied:
        applied = "training used it (tune.apply)"
    else:
        applied = "training kept the configured rate (tune.apply=false)"
    return [
        "## Learning-rate finder",
        "",
        f"Lightning's range test over {len(test.lr)} steps ({lr_range}) {found}; "
        f"{applied}. See plots/{LR_FIND_PLOT}.",
        "",
    ]


def _results_lines(run: RunFolder) -> list[str]:
    """Every overall metric and timing of metrics.json, printed exactly as it is stored there."""
    overall = {
        name: value
        for name, value in run.metrics.items()
        if is_overall_metric(name) or is_timing(name) or is_model_fact(name)
    }
    if not overall:
        return []
    lines = ["## Final metrics", "", "| Metric | Value |", "|---|---:|"]
    lines += [f"| {name} | {json.dumps(value)} |" for name, value in sorted(overall.items())]
    return [*lines, ""]


def _per_class_lines(run: RunFolder) -> list[str]:
    columns = {name: _per_class(run, name) for name in ("precision", "recall", "f1")}
    if not any(columns.values()):
        return []
    matrix = run.data.test.confusion_matrix if run.data.test else None
    support = [int(sum(row)) for row in matrix] if matrix else None
    lines = [
        f"## Per-class {run.split} metrics",
        "",
        "| Class | Precision | Recall | F1 | Support |",
        "|---|---:|---:|---:|---:|",
    ]
    for index, label in enumerate(run.class_names):
        values = [
            json.dumps(columns[name][label]) if label in columns[name] else "" for name in columns
        ]
        count = str(support[index]) if support and index < len(support) else ""
        lines.append(f"| {label} | {' | '.join(values)} | {count} |")
    return [*lines, ""]


def most_confused_pairs(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], limit: int = 10
) -> list[tuple[str, str, int]]:
    """``(true class, predicted class, count)`` of the largest off-diagonal cells of a confusion
    matrix (rows: true classes), largest first."""
    cells = [
        (int(count), row, column)
        for row, counts in enumerate(matrix)
        for column, count in enumerate(counts)
        if row != column and count > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [(class_names[row], class_names[column], count) for count, row, column in cells[:limit]]


def _most_confused_lines(run: RunFolder) -> list[str]:
    matrix = run.data.test.confusion_matrix if run.data.test else None
    if not matrix or len(run.class_names) != len(matrix):
        return []
    pairs = most_confused_pairs(matrix, run.class_names)
    if not pairs:
        return []
    lines = [
        "## Most-confused pairs",
        "",
        f"The largest off-diagonal cells of the {run.split} confusion matrix.",
        "",
        "| True | Predicted | Count | Share of the true class |",
        "|---|---|---:|---:|",
    ]
    support = {name: sum(row) for name, row in zip(run.class_names, matrix, strict=True)}
    for true, predicted, count in pairs:
        lines.append(f"| {true} | {predicted} | {count} | {count / support[true]:.1%} |")
    return [*lines, ""]


def _top_losses_lines(run: RunFolder) -> list[str]:
    rows = run.data.top_losses
    if not rows:
        return []
    # the declared kind of problem; a folder without one (an older run): the rows' shape
    regression = run.task == "regression" if run.task in TASKS else rows[0].confidence is None
    what = "worst-predicted" if regression else "misclassified"
    measure = "squared error" if regression else "cross-entropy of the true class"
    lines = [
        "## Top losses",
        "",
        f"The {len(rows)} {what} {run.split} samples with the highest loss ({measure}), "
        f"highest first; the sample is its file or table line where known, else its position "
        f"in the {run.split} split.",
        "",
    ]
    if regression:
        lines += ["| # | Sample | True | Predicted | Loss |", "|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {rank} | {row.name or row.index} | {row.true:.4g} | {row.predicted:.4g} | "
            f"{row.loss:.4g} |"
            for rank, row in enumerate(rows, 1)
        ]
    else:
        lines += [
            "| # | Sample | True | Predicted | Confidence | Loss |",
            "|---:|---:|---|---|---:|---:|",
        ]
        lines += [
            f"| {rank} | {row.name or row.index} | {row.true} | {row.predicted} | "
            f"{row.confidence:.3f} | {row.loss:.3f} |"
            for rank, row in enumerate(rows, 1)
        ]
    return [*lines, ""]


def _diagnosis_lines(run: RunFolder) -> list[str]:
    lines = []
    test_loss = run.metrics.get(f"{run.split}/loss")
    evidence = _evidence(run)
    diagnosis = diagnose_fit(run.history, test_loss, _chance_loss(run), run.error, evidence)
    # an evaluation has no history; a training run stopped by a NaN in epoch 0 neither
    if run.history or (run.error and diagnosis.verdict == "diverged"):
        lines += ["## Fit diagnosis", "", f"**{diagnosis.verdict}**: {diagnosis.explanation}", ""]
        if evidence.stopped_early and evidence.stopped_early not in diagnosis.explanation:
            lines += [evidence.stopped_early, ""]
    problems = diagnose_training(run.data.diagnostics)
    if problems:
        lines += ["## Training problems", ""]
        lines += [f"- **{problem.name}**: {problem.explanation}" for problem in problems]
        lines.append("")
    return lines


def _evidence(run: RunFolder) -> Evidence:
    """The split sizes, model size and ending that tell the diagnosis what is noise; whether
    the run is a fold of a cross-validation, and which key sets its learning rate."""
    data, model, test = run.data.data, run.data.model, run.data.test
    splits = data.splits if data is not None else {}
    # the spread is of the loss top_losses measures: the validation loss's only for these
    same_loss = run.loss_target in PER_SAMPLE_MEASURED
    return Evidence(
        train_samples=splits.get("train"),
        val_samples=splits.get("val"),
        params=model.trainable_params if model is not None else None,
        loss_spread=test.loss_spread if test is not None and same_loss else None,
        stopped_early=run.data.stopped_early,
        # litlab sets cv.fold in each fold's (and the refit's) own config
        in_cross_validation=(run.config.get("cv") or {}).get("fold") is not None,
        lr_key=learning_rate_key(run.config),
    )


def _chance_loss(run: RunFolder) -> float | None:
    """The loss of a model that gives every class the same probability: ln(number of classes)
    for torch's cross-entropy losses; none for a regression loss or a loss of your own."""
    entry = TORCH_LOSSES.get(run.loss_target)
    if entry is None or entry.task not in ("multiclass", "binary"):
        return None
    classes = len(run.class_names) if entry.task == "multiclass" else 2
    return math.log(classes) if classes > 1 else None
