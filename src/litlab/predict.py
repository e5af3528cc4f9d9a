"""`predict(cfg)`: a trained model's predictions for a person's own files (`litlab-predict`).

Images are brought to the training data's form (:mod:`litlab.data.images`), tables read by
their column names (:mod:`litlab.data.inputs`); Lightning's predict loop runs the model on one
device. The run folder gets predictions.csv (written last: its presence means complete) and
predictions.png (each image as the model saw it, with its prediction).
"""

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from litlab.build import build_trainer, load_trained
from litlab.callbacks.graceful_stop import stop_on_ctrl_c
from litlab.config import validate_config
from litlab.config.checks import runs_on_one_device
from litlab.data import EpochPermutation, TensorBatchLoader
from litlab.data.images import Preprocessing
from litlab.data.inputs import UserInputs, array_inputs, read_inputs
from litlab.errors import ConfigError
from litlab.lightning_modules import class_probabilities
from litlab.report import plots
from litlab.run_folder import PREDICTIONS, PREDICTIONS_PLOT, write_atomically

log = logging.getLogger(__name__)

NO_INK = "no ink"  # a picture's mark in the table and predictions.png, in place of a class


def predict(cfg: DictConfig, values: Any = None) -> list[dict[str, Any]]:
    """The inputs are ``cfg.inputs`` (files), or ``values`` given as an array in the data
    set's raw form (the Python API). One row per input: ``input``, and ``predicted``,
    ``confidence``, ``top`` (the top-k ``(class, probability)`` pairs) and ``preprocessing``
    for classifiers, ``value`` (in the target's units) for regression models. A picture with
    no ink gets no class: ``predicted`` and ``confidence`` None, ``top`` empty."""
    validate_config(cfg)
    if not runs_on_one_device(cfg.trainer):
        raise ConfigError(
            f"trainer.devices={cfg.trainer.get('devices')} is invalid for predict.py: it runs on "
            "one device (every device would predict every input). Use trainer.devices=1, and "
            "trainer.accelerator=gpu for a GPU."
        )
    steps = Preprocessing.from_config(OmegaConf.to_container(cfg.preprocess))
    trained = load_trained(cfg.ckpt_path, cfg.paths.data_dir)
    datamodule, module = trained.datamodule, trained.module
    if values is None:
        inputs = read_inputs(str(cfg.inputs), datamodule, steps)
    else:
        inputs = array_inputs(values, datamodule)
    model_inputs = datamodule.normalise(inputs.raw)
    loader = TensorBatchLoader(
        (model_inputs,), cfg.batch_size, EpochPermutation(len(model_inputs), shuffle=False)
    )
    trainer = build_trainer(cfg)
    started = time.perf_counter()
    with stop_on_ctrl_c("while predicting; no result was written."):
        outputs = torch.cat(trainer.predict(module, dataloaders=loader)).float()
    seconds = time.perf_counter() - started
    log.info(
        "Predicted %d inputs in %.3f s (%.2f ms each in Lightning's predict loop).",
        len(outputs),
        seconds,
        1000 * seconds / len(outputs),
    )
    task, top_k = module.hparams.task, cfg.top_k
    if task == "regression":
        rows = _values(inputs, datamodule.target_units(outputs))
    else:
        probabilities = class_probabilities(task, outputs)
        top_k = _capped(top_k, probabilities.shape[-1])
        rows = _classes(inputs, probabilities, datamodule.class_names, top_k)
    if trainer.is_global_zero:
        _write_results(Path(cfg.paths.output_dir), rows, inputs, cfg.max_shown, top_k)
    return rows


def _capped(top_k: int, num_classes: int) -> int:
    """top_k, at most every class (the CSV then has no empty columns). Not on the console: the
    default top_k=3 exceeds a binary model's classes on every call."""
    if top_k > num_classes:
        log.debug(
            "top_k=%d, but the model has %d classes: all of them are listed.", top_k, num_classes
        )
    return min(top_k, num_classes)


def _classes(
    inputs: UserInputs, probabilities: torch.Tensor, names: list[str], top_k: int
) -> list[dict[str, Any]]:
    best = probabilities.topk(top_k, dim=-1)
    rows = []
    for sample, name in enumerate(inputs.names):
        top = [
            (names[int(index)], float(probability))
            for probability, index in zip(best.values[sample], best.indices[sample], strict=True)
        ]
        # the model answers an empty canvas too, confidently: that answer is about nothing
        top = [] if inputs.blank[sample] else top
        rows.append(
            {
                "input": name,
                "predicted": top[0][0] if top else None,
                "confidence": top[0][1] if top else None,
                "top": top,
                "preprocessing": inputs.steps[sample],
            }
        )
    return rows


def _values(inputs: UserInputs, values: torch.Tensor) -> list[dict[str, Any]]:
    return [
        {"input": name, "value": float(value)}
        for name, value in zip(inputs.names, values.reshape(-1), strict=True)
    ]


def _write_results(
    folder: Path, rows: list[dict[str, Any]], inputs: UserInputs, max_shown: int, top_k: int
) -> None:
    if inputs.is_image and max_shown > 0:
        shown = rows[:max_shown]
        labels = [_label(row) for row in shown]
        more = f" (first {max_shown} of {len(rows)})" if len(rows) > max_shown else ""
        title = f"inputs as the model saw them: prediction (confidence){more}"
        image = plots.image_grid(inputs.raw[:max_shown].numpy(), labels, title)
        plots.save_image(image, folder / PREDICTIONS_PLOT)
    write_atomically(folder / PREDICTIONS, predictions_csv(rows, top_k))
    log.debug("Predictions: %s", folder / PREDICTIONS)  # the command's last line names them


def _label(row: dict[str, Any]) -> str:
    return NO_INK if row["predicted"] is None else f"{row['predicted']} ({row['confidence']:.2f})"


def predictions_csv(rows: list[dict[str, Any]], top_k: int) -> str:
    """One line per input; classifiers: the top-k classes and their probabilities (empty
    cells for a picture with no ink, its preprocessing says so)."""
    text = io.StringIO()
    writer = csv.writer(text)
    if rows and "value" in rows[0]:
        writer.writerow(["input", "value"])
        writer.writerows([row["input"], repr(row["value"])] for row in rows)
        return text.getvalue()
    ranks = range(1, top_k + 1)
    header = ["input", "predicted", "confidence"]
    header += [name for rank in ranks for name in (f"top{rank}", f"top{rank}_probability")]
    writer.writerow([*header, "preprocessing"])
    for row in rows:
        top = [cell for name, probability in row["top"] for cell in (name, f"{probability:.6f}")]
        top += [""] * (2 * top_k - len(top))  # none for a picture with no ink
        predicted, confidence = (
            "" if row["predicted"] is None else row["predicted"],
            row["confidence"],
        )
        confidence = "" if confidence is None else f"{confidence:.6f}"
        writer.writerow([row["input"], predicted, confidence, *top, row["preprocessing"]])
    return text.getvalue()


def prediction_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """The predictions as a plain-text table for the console (the first ``limit``)."""
    if rows and "value" in rows[0]:
        lines = [(Path(row["input"]).name, f"{row['value']:.6g}") for row in rows[:limit]]
        header = ("input", "value")
    else:
        lines = [_table_line(row) for row in rows[:limit]]
        header = ("input", "predicted", "confidence", "next most likely")
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    formatted = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *lines]
    ]
    if len(rows) > limit:
        formatted.append(f"... {len(rows) - limit} more in {PREDICTIONS}")
    return "\n".join(line.rstrip() for line in formatted)


def _table_line(row: dict[str, Any]) -> tuple[str, str, str, str]:
    name = Path(row["input"]).name
    if row["predicted"] is None:
        return name, "-", "-", f"{NO_INK}: nothing to predict"
    ranked = "  ".join(f"{label}:{p:.3f}" for label, p in row["top"][1:])
    return name, row["predicted"], f"{row['confidence']:.3f}", ranked
