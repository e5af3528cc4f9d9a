"""Checks on the composed config, run before anything is built.

Hydra already rejects unknown group options and keys (listing the valid ones); this module
catches what it cannot: wrong types and ranges, and choices that do not fit together.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litlab.errors import ConfigError

_ABSENT = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    key: str
    accepts: Callable[[Any], bool]
    expected: str
    example: str


RULES = (
    Rule("seed", _is_int, "an integer", "seed=42"),
    Rule(
        "trainer.max_epochs",
        lambda v: _is_int(v) and (v >= 1 or v == -1),
        "an integer >= 1 (or -1 for no limit)",
        "trainer.max_epochs=5",
    ),
    Rule("optimizer.lr", lambda v: _is_number(v) and v > 0, "a number > 0", "optimizer.lr=0.001"),
    Rule(
        "scheduler.max_lr",
        lambda v: _is_number(v) and v > 0,
        "a number > 0",
        "scheduler.max_lr=0.01",
    ),
    Rule(
        "optimizer.weight_decay",
        lambda v: _is_number(v) and v >= 0,
        "a number >= 0",
        "optimizer.weight_decay=0.0001",
    ),
    Rule(
        "optimizer.momentum",
        lambda v: _is_number(v) and 0 <= v < 1,
        "a number in [0, 1)",
        "optimizer.momentum=0.9",
    ),
    Rule(
        "model.dropout",
        lambda v: _is_number(v) and 0 <= v < 1,
        "a probability in [0, 1)",
        "model.dropout=0.2",
    ),
    Rule("model.compile", lambda v: isinstance(v, bool), "true or false", "model.compile=true"),
    Rule(
        "model.hidden_size",
        lambda v: _is_int(v) and v >= 1,
        "an integer >= 1",
        "model.hidden_size=256",
    ),
    Rule(
        "model.hidden_sizes",
        lambda v: isinstance(v, list) and all(_is_int(h) and h >= 1 for h in v),
        "a list of integers >= 1",
        "model.hidden_sizes=[128,64]",
    ),
    Rule(
        "model.channels",
        lambda v: isinstance(v, list) and all(_is_int(h) and h >= 1 for h in v),
        "a list of integers >= 1",
        "model.channels=[6,16]",
    ),
    Rule(
        "data.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1", "data.batch_size=128"
    ),
    Rule(
        "data.eval_batch_size",
        lambda v: _is_int(v) and v >= 1,
        "an integer >= 1",
        "data.eval_batch_size=1000",
    ),
    Rule("data.augment", lambda v: isinstance(v, bool), "true or false", "data.augment=true"),
    Rule(
        "data.on_device",
        lambda v: isinstance(v, bool),
        "true, false or null (auto)",
        "data.on_device=false",
    ),
    Rule(
        "data.max_shift",
        lambda v: _is_number(v) and 0 <= v <= 14,
        "a number of pixels in [0, 14]",
        "data.max_shift=2",
    ),
    Rule(
        "data.max_rotation",
        lambda v: _is_number(v) and 0 <= v <= 180,
        "degrees in [0, 180]",
        "data.max_rotation=10",
    ),
    Rule(
        "data.val_size",
        lambda v: (_is_int(v) and v >= 1) or (_is_number(v) and 0 < v < 1),
        "a count >= 1 or a fraction in (0, 1)",
        "data.val_size=5000",
    ),
    Rule(
        "data.test_size",
        lambda v: (_is_int(v) and v >= 1) or (_is_number(v) and 0 < v < 1),
        "a count >= 1 or a fraction in (0, 1)",
        "data.test_size=0.2",
    ),
    Rule(
        "trainer.gradient_clip_val",
        lambda v: _is_number(v) and v > 0,
        "a number > 0 (or null for no clipping)",
        "trainer.gradient_clip_val=1.0",
    ),
    Rule(
        "callbacks.checkpoint.every_n_train_steps",
        lambda v: _is_int(v) and v >= 1,
        "an integer >= 1 (or null: once per epoch only)",
        "callbacks.checkpoint.every_n_train_steps=500",
    ),
    Rule(
        "callbacks.finite_loss.check_every_n_steps",
        lambda v: _is_int(v) and v >= 1,
        "an integer >= 1 (or null: 1 on one CPU, 20 on a GPU or under DDP)",
        "callbacks.finite_loss.check_every_n_steps=1",
    ),
    Rule(
        "callbacks.diagnostics.every_n_steps",
        lambda v: _is_int(v) and v >= 1,
        "an integer >= 1 (or null: histograms and graph only)",
        "callbacks.diagnostics.every_n_steps=50",
    ),
    Rule(
        "callbacks.evaluation_images.misclassified",
        lambda v: _is_int(v) and v >= 0,
        "a number of images >= 0",
        "callbacks.evaluation_images.misclassified=32",
    ),
    Rule(
        "resume",
        lambda v: v in ("auto", "force"),
        "auto (continue the latest unfinished run of this task_name) or force (also a "
        "finished one), or null for a new run",
        "resume=auto",
    ),
    Rule(
        "loss.label_smoothing",
        lambda v: _is_number(v) and 0 <= v < 1,
        "a number in [0, 1)",
        "loss.label_smoothing=0.1",
    ),
)

# Which task each built-in loss fits, and the loss options to suggest per task.
LOSS_TASKS = {
    "torch.nn.CrossEntropyLoss": "multiclass",
    "torch.nn.NLLLoss": "multiclass",
    "torch.nn.BCEWithLogitsLoss": "binary",
    "torch.nn.BCELoss": "binary",
    "torch.nn.MSELoss": "regression",
    "torch.nn.L1Loss": "regression",
    "torch.nn.HuberLoss": "regression",
}
LOSS_OPTIONS = {
    "multiclass": "loss=cross_entropy or loss=nll",
    "binary": "loss=bce_with_logits or loss=bce",
    "regression": "loss=mse, loss=mae or loss=huber",
}


def validate_config(cfg: DictConfig, choices: dict[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` naming the first bad key. ``choices`` are Hydra's chosen group
    options (``{"model": "cnn", ...}``), used to phrase the message like the command line."""
    choices = choices or {}
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=_ABSENT)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if value is not _ABSENT and value is not None and not rule.accepts(value):
            raise ConfigError(
                f"{rule.key}={value!r} is invalid: it must be {rule.expected}, e.g. {rule.example}."
            )
    _check_loss_fits_task(cfg, choices)
    _check_model_fits_data(cfg, choices)
    _check_trainer_combinations(cfg)


def _check_loss_fits_task(cfg: DictConfig, choices: dict[str, str]) -> None:
    task = cfg.data.task
    fits = LOSS_TASKS.get(cfg.loss.get("_target_"))
    if fits is not None and fits != task:
        loss = choices.get("loss", cfg.loss._target_)
        data = choices.get("data", "this data set")
        raise ConfigError(
            f"loss={loss} is a {fits} loss, but data={data} is a {task} task (data.task). "
            f"Use {LOSS_OPTIONS[task]} with this data, or pick {fits} data."
        )


def _check_model_fits_data(cfg: DictConfig, choices: dict[str, str]) -> None:
    if "input_shape" in cfg.model and cfg.data.get("input_shape") is None:
        model = choices.get("model", cfg.model._target_)
        data = choices.get("data", "this data set")
        raise ConfigError(
            f"model={model} needs image data with a [channels, height, width] shape "
            f"(model.input_shape reads data.input_shape), but data={data} is tabular "
            "(data.input_shape is null). Use an image data set such as data=mnist, or a model "
            "for tabular data: model=mlp, model=simple_nn or model=perceptron."
        )


def _check_trainer_combinations(cfg: DictConfig) -> None:
    """Settings that are each valid but that torch or Lightning refuse together."""
    trainer, target = cfg.trainer, (cfg.get("scheduler") or {}).get("_target_", "")
    if trainer.get("max_epochs") == -1 and target.endswith(("OneCycleLR", "CosineAnnealingLR")):
        raise ConfigError(
            f"trainer.max_epochs=-1 (no limit) cannot work with scheduler {target}: it plans "
            "the learning rate over the whole run. Give trainer.max_epochs a number, e.g. "
            "trainer.max_epochs=20, or use scheduler=none, step or plateau."
        )
    precision = str(trainer.get("precision", ""))
    if "mixed" in precision and cfg.loss.get("_target_") == "torch.nn.BCELoss":
        raise ConfigError(
            f"loss=bce cannot run under trainer.precision={precision}: torch refuses BCELoss "
            "inside autocast because sigmoid then BCE is unstable in half precision. Use "
            "loss=bce_with_logits, which is the same loss computed stably."
        )
    if (
        precision.startswith("16")
        and trainer.get("gradient_clip_val")
        and cfg.optimizer.get("fused")
    ):
        raise ConfigError(
            f"trainer.gradient_clip_val with trainer.precision={precision} cannot use a fused "
            "optimizer: Lightning cannot unscale its gradients before clipping. Set "
            "optimizer.fused=false, or use trainer.precision=bf16-mixed."
        )
