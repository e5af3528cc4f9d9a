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
from litlab.config import validate_config
from litlab.config.checks import runs_on_one_device
from litlab.data import EpochPermutation, TensorBatchLoader
from litlab.data.images import Preprocessing
from litlab.data.inputs import UserInputs, read_inputs
from litlab.errors import ConfigError
from litlab.lightning_modules import class_probabilities
from litlab.report import plots
from litlab.run_folder import PREDICTIONS, PREDICTIONS_PLOT, write_atomically

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """One row per input: ``input``, and ``predicted``, ``confidence``, ``top`` (the top-k
    ``(class, probability)`` pairs) and ``preprocessing`` for classifiers, ``value`` (in the
    target's units) for regression models."""
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
    inputs = read_inputs(str(cfg.inputs), datamodule, steps)
    model_inputs = datamodule.normalise(inputs.raw)
    loader = TensorBatchLoader(
        (model_inputs,), cfg.batch_size, EpochPermutation(len(model_inputs), shuffle=False)
    )
    trainer = build_trainer(cfg)
    started = time.perf_counter()
    outputs = torch.cat(trainer.predict(module, dataloaders=loader)).float()
    seconds = time.perf_counter() - started
    log.info(
        "Predicted %d inputs in %.3f s (%.2f ms each in Lightning's predict loop).",
        len(outputs),
        seconds,
        1000 * seconds / len(outputs),
    )
    task = module.hparams.task
    if task == "regression":
        rows = _values(inputs, datamodule.target_units(outputs))
    else:
        probabilities = class_probabilities(task, outputs)
        rows = _classes(inputs, probabilities, datamodule.class_names, cfg.top_k)
    if trainer.is_global_zero:
        _write_results(Path(cfg.paths.output_dir), rows, inputs, cfg.max_shown, cfg.top_k)
    return rows


def _classes(
    inputs: UserInputs, probabilities: torch.Tensor, names: list[str], top_k: int
) -> list[dict[str, Any]]:
    best = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    rows = []
    for sample, name in enumerate(inputs.names):
        top = [
            (names[int(index)], float(probability))
            for probability, index in zip(best.values[sample], best.indices[sample], strict=True)
        ]
        rows.append(
            {
                "input": name,
                "predicted": top[0][0],
                "confidence": top[0][1],
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
        labels = [f"{row['predicted']} ({row['confidence']:.2f})" for row in shown]
        more = f" (first {max_shown} of {len(rows)})" if len(rows) > max_shown else ""
        title = f"inputs as the model saw them: prediction (confidence){more}"
        image = plots.image_grid(inputs.raw[:max_shown].numpy(), labels, title)
        plots.save_image(image, folder / PREDICTIONS_PLOT)
    write_atomically(folder / PREDICTIONS, predictions_csv(rows, top_k))
    log.info("Predictions: %s", folder / PREDICTIONS)


def predictions_csv(rows: list[dict[str, Any]], top_k: int) -> str:
    """One line per input; classifiers: the top-k classes and their probabilities."""
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
        top += [""] * (2 * top_k - len(top))  # fewer classes than top_k
        confidence = f"{row['confidence']:.6f}"
        writer.writerow([row["input"], row["predicted"], confidence, *top, row["preprocessing"]])
    return text.getvalue()


def prediction_table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    """The predictions as a plain-text table for the console (the first ``limit``)."""
    if rows and "value" in rows[0]:
        lines = [(Path(row["input"]).name, f"{row['value']:.6g}") for row in rows[:limit]]
        header = ("input", "value")
    else:
        lines = [
            (
                Path(row["input"]).name,
                row["predicted"],
                f"{row['confidence']:.3f}",
                "  ".join(f"{name}:{p:.3f}" for name, p in row["top"][1:]),
            )
            for row in rows[:limit]
        ]
        header = ("input", "predicted", "confidence", "next most likely")
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    formatted = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *lines]
    ]
    if len(rows) > limit:
        formatted.append(f"... {len(rows) - limit} more in {PREDICTIONS}")
    return "\n".join(line.rstrip() for line in formatted)
