"""Checks on the composed config, run before anything is built.

First the general keys, whose domains are written down here: the entry configs' own keys
(train.yaml, eval.yaml, predict.yaml, export.yaml), tune, and the keys of the library parts
(trainer, optimizer, scheduler, callbacks, logger); then choices that do not work together.
These import nothing heavy, so a typo is answered in a fraction of a second. Then the parts the
config chose, each against its own entry (``litlab.config.parts``), which imports their modules.

Hydra already rejects unknown group options (listing the valid ones); what a library's
constructor refuses becomes a ConfigError in ``litlab.build``.
"""

import difflib
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litlab.config.domains import (
    BOOLEAN,
    MIN_OR_MAX,
    OPEN_FRACTION,
    PROBABILITY,
    Domain,
    each,
    int_at_least,
    is_int,
    is_number,
    number_above,
    number_at_least,
    one_of,
)
from litlab.config.entries import (
    MODEL_SWITCHES,
)
from litlab.config.losses import TORCH_LOSSES
from litlab.config.parts import part_checks
from litlab.errors import ConfigError, DataError
from litlab.library_internals import child_node, is_interpolation, is_missing
from litlab.metric_names import (
    TASK_METRICS,
    class_names_or_indices,
    epoch_metrics,
    validation_metrics,
)

_ABSENT = object()
RESUME_MODES = ("auto", "force")
# a run's label, as MLflow allows a tag's name (and W&B its length; TensorBoard takes any text)


def _is_tag(value: object) -> bool:
    text = str(value)
    return (
        isinstance(value, (str, int, float))
        and not isinstance(value, bool)
        and len(text) <= 64
        and re.fullmatch(r"[\w.\-/: ]*\w[\w.\-/: ]*", text) is not None
        and posixpath.normpath(text) == text  # MLflow refuses "a//b", "a/", "./a"
        and not text.startswith(("/", "..", "mlflow.", "litlab."))  # their own tags
    )


TAG = Domain(_is_tag, "a label of up to 64 letters, digits, _ - . : / and spaces")


# limit_train_batches etc.: a number of batches or a fraction of them
BATCHES = Domain(
    lambda v: (is_int(v) and v >= 0) or (is_number(v) and 0 <= v <= 1),
    "a number of batches >= 0 or a fraction in [0, 1]",
)


# Trainer flags that litlab sets from whether the callback is configured.
SWITCHED_BY_CALLBACKS = {
    "enable_progress_bar": "progress_bar",
    "enable_model_summary": "model_summary",
}


@dataclass(frozen=True)
class Rule:
    key: str
    domain: Domain
    example: str


RULES = (
    # -- the entry configs (conf/train.yaml, conf/eval.yaml) -----------------------------
    Rule(
        "seed",
        Domain(lambda v: is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
        "seed=42",
    ),
    Rule(
        "resume",
        Domain(
            lambda v: v in RESUME_MODES,
            "auto (continue the latest unfinished run of this task_name) or force (also a "
            "finished one), or null for a new run",
        ),
        "resume=auto",
    ),
    Rule("test", BOOLEAN, "test=true"),
    Rule(
        "cv.folds",
        int_at_least(
            2,
            note=" (each fold validates on 1/folds of the training and validation samples; "
            "cv.folds=null trains one split)",
        ),
        "cv.folds=5",
    ),
    Rule("cv.refit", BOOLEAN, "cv.refit=true"),
    Rule("tags", each(TAG, "a list of labels"), "tags=[baseline,small_lr]"),
    Rule("notes", Domain(lambda v: isinstance(v, str), "a sentence in quotes"), 'notes="..."'),
    Rule("verbose", BOOLEAN, "verbose=true"),
    Rule("stop_on_failure", BOOLEAN, "stop_on_failure=true"),
    Rule("ckpt_path", Domain(lambda v: isinstance(v, str) and v != "", "a file path"), ""),
    Rule("split", one_of("test", "val"), "split=test"),
    # conf/predict.yaml
    Rule(
        "inputs",
        # a number too: Hydra reads inputs=2024 (a folder named 2024) as an int
        Domain(lambda v: isinstance(v, (str, int, float)) and v != "", "a file, folder or glob"),
        "",
    ),
    Rule("top_k", int_at_least(1), "top_k=3"),
    Rule("batch_size", int_at_least(1), "batch_size=256"),
    Rule("max_shown", int_at_least(0), "max_shown=64"),
    Rule(
        "preprocess.invert",
        Domain(lambda v: v in ("auto", True, False), "auto, true or false"),
        "preprocess.invert=auto",
    ),
    Rule("preprocess.level", BOOLEAN, "preprocess.level=false"),
    Rule("preprocess.crop", BOOLEAN, "preprocess.crop=false"),
    Rule("preprocess.fit", BOOLEAN, "preprocess.fit=false"),
    Rule("preprocess.centre", BOOLEAN, "preprocess.centre=false"),
    # conf/export.yaml
    Rule("format", one_of("onnx", "pt2"), "format=onnx"),
    Rule("verify", BOOLEAN, "verify=false"),
    Rule("tolerance", number_above(0), "tolerance=1e-4"),
    # -- tune (conf/tune/lr_find.yaml) ------------------------------------------------
    Rule("tune.min_lr", number_above(0), "tune.min_lr=1e-6"),
    Rule("tune.max_lr", number_above(0), "tune.max_lr=1.0"),
    # the suggestion skips the first 10 steps and needs a few more to read a slope
    Rule("tune.num_training", int_at_least(20), "tune.num_training=100"),
    Rule("tune.mode", one_of("exponential", "linear"), "tune.mode=exponential"),
    Rule(
        "tune.early_stop_threshold",
        number_above(1, " (or null: never stop early)"),
        "tune.early_stop_threshold=4.0",
    ),
    Rule("tune.apply", BOOLEAN, "tune.apply=true"),
    Rule("tune.only", BOOLEAN, "tune.only=true"),
    # -- trainer ----------------------------------------------------------------------
    Rule(
        "trainer.max_epochs",
        int_at_least(1, (-1,), " (or -1 for no limit)"),
        "trainer.max_epochs=5",
    ),
    Rule("trainer.min_epochs", int_at_least(0), "trainer.min_epochs=1"),
    Rule(
        "trainer.max_steps",
        int_at_least(1, (-1,), " (or -1 for no limit)"),
        "trainer.max_steps=1000",
    ),
    Rule(
        "trainer.devices",
        Domain(
            lambda v: (is_int(v) and (v >= 1 or v == -1)) or isinstance(v, (str, list)),
            "a number of devices >= 1, -1 (all), auto, or a list of device indices",
        ),
        "trainer.devices=1",
    ),
    Rule("trainer.num_nodes", int_at_least(1), "trainer.num_nodes=1"),
    Rule("trainer.check_val_every_n_epoch", int_at_least(1), "trainer.check_val_every_n_epoch=1"),
    Rule("trainer.log_every_n_steps", int_at_least(1), "trainer.log_every_n_steps=50"),
    Rule(
        "trainer.gradient_clip_val",
        number_above(0, " (or null for no clipping)"),
        "trainer.gradient_clip_val=1.0",
    ),
    Rule("trainer.accumulate_grad_batches", int_at_least(1), "trainer.accumulate_grad_batches=2"),
    Rule(
        "trainer.limit_train_batches",
        Domain(
            lambda v: BATCHES.accepts(v) and v > 0,
            "a number of batches >= 1 or a fraction in (0, 1] (0 would train nothing)",
        ),
        "trainer.limit_train_batches=0.1",
    ),
    Rule("trainer.limit_val_batches", BATCHES, "trainer.limit_val_batches=0.1"),
    Rule("trainer.limit_test_batches", BATCHES, "trainer.limit_test_batches=0.1"),
    Rule("trainer.overfit_batches", BATCHES, "trainer.overfit_batches=3"),
    Rule(
        "trainer.num_sanity_val_steps",
        int_at_least(-1, note=" (-1: the whole validation split)"),
        "trainer.num_sanity_val_steps=2",
    ),
    Rule(
        "trainer.deterministic",
        Domain(lambda v: isinstance(v, bool) or v == "warn", "true, false or warn"),
        "trainer.deterministic=true",
    ),
    # -- optimizer --------------------------------------------------------------------
    Rule("optimizer.lr", number_above(0), "optimizer.lr=0.001"),
    Rule("optimizer.weight_decay", number_at_least(0), "optimizer.weight_decay=0.0001"),
    Rule("optimizer.momentum", PROBABILITY, "optimizer.momentum=0.9"),
    Rule("optimizer.nesterov", BOOLEAN, "optimizer.nesterov=true"),
    Rule("optimizer.alpha", PROBABILITY, "optimizer.alpha=0.99"),
    Rule("optimizer.eps", number_above(0), "optimizer.eps=1e-8"),
    Rule(
        "optimizer.betas",
        Domain(
            lambda v: (
                isinstance(v, list) and len(v) == 2 and all(is_number(b) and 0 <= b < 1 for b in v)
            ),
            "two numbers in [0, 1)",
        ),
        "optimizer.betas=[0.9,0.999]",
    ),
    Rule("optimizer.fused", BOOLEAN, "optimizer.fused=false"),
    Rule("optimizer.foreach", BOOLEAN, "optimizer.foreach=true"),
    # -- scheduler --------------------------------------------------------------------
    Rule("scheduler.step_size", int_at_least(1), "scheduler.step_size=5"),
    Rule("scheduler.gamma", number_above(0), "scheduler.gamma=0.5"),
    Rule("scheduler.T_max", int_at_least(1), "scheduler.T_max=10"),
    Rule("scheduler.eta_min", number_at_least(0), "scheduler.eta_min=0.0"),
    Rule("scheduler.mode", MIN_OR_MAX, "scheduler.mode=max"),
    Rule("scheduler.factor", OPEN_FRACTION, "scheduler.factor=0.5"),
    Rule("scheduler.patience", int_at_least(0), "scheduler.patience=2"),
    Rule("scheduler.max_lr", number_above(0), "scheduler.max_lr=0.01"),
    Rule("scheduler.pct_start", OPEN_FRACTION, "scheduler.pct_start=0.25"),
    Rule("scheduler.div_factor", number_above(0), "scheduler.div_factor=25"),
    Rule("scheduler.final_div_factor", number_above(0), "scheduler.final_div_factor=10000"),
    Rule("scheduler.anneal_strategy", one_of("cos", "linear"), "scheduler.anneal_strategy=cos"),
    # -- model: litlab's switches; the keys of each model are its entry's
    *(
        Rule(f"model.{name}", domain, f"model.{name}=true")
        for name, domain in MODEL_SWITCHES.items()
    ),
    # -- logger: folder names inside the run folder --------------------------------------
    Rule(
        "logger.tensorboard.name",
        Domain(lambda v: isinstance(v, str), "a folder name"),
        "logger.tensorboard.name=tensorboard",
    ),
    Rule(
        "logger.csv.name",
        Domain(lambda v: isinstance(v, str), "a folder name"),
        "logger.csv.name=csv",
    ),
    # -- callbacks --------------------------------------------------------------------
    Rule("callbacks.best_checkpoint.mode", MIN_OR_MAX, "callbacks.best_checkpoint.mode=max"),
    Rule(
        "callbacks.best_checkpoint.save_top_k",
        int_at_least(-1, note=" (-1: keep every epoch's)"),
        "callbacks.best_checkpoint.save_top_k=1",
    ),
    Rule(
        "callbacks.last_checkpoint.every_n_train_steps",
        int_at_least(1, note=" (or null: once per epoch only)"),
        "callbacks.last_checkpoint.every_n_train_steps=500",
    ),
    Rule(
        "callbacks.finite_loss.check_every_n_steps",
        int_at_least(1, note=" (or null: 1 on one CPU, 20 on a GPU or under DDP)"),
        "callbacks.finite_loss.check_every_n_steps=1",
    ),
    Rule(
        "callbacks.early_stopping.patience", int_at_least(0), "callbacks.early_stopping.patience=5"
    ),
    Rule(
        "callbacks.early_stopping.patience_steps",
        int_at_least(0),
        "callbacks.early_stopping.patience_steps=1000",
    ),
    Rule(
        "callbacks.early_stopping.min_delta",
        number_at_least(0),
        "callbacks.early_stopping.min_delta=0.001",
    ),
    Rule("callbacks.early_stopping.mode", MIN_OR_MAX, "callbacks.early_stopping.mode=max"),
    Rule(
        "callbacks.learning_rate_monitor.logging_interval",
        one_of("step", "epoch"),
        "callbacks.learning_rate_monitor.logging_interval=epoch",
    ),
    Rule(
        "callbacks.progress_bar.refresh_rate",
        int_at_least(1, note=" (redraws per second; callbacks.progress_bar=null hides it)"),
        "callbacks.progress_bar.refresh_rate=10",
    ),
    Rule(
        "callbacks.model_summary.max_depth",
        int_at_least(-1, note=" (-1: every layer)"),
        "callbacks.model_summary.max_depth=2",
    ),
    Rule(
        "callbacks.diagnostics.every_n_steps",
        int_at_least(1, note=" (or null: histograms and graph only)"),
        "callbacks.diagnostics.every_n_steps=50",
    ),
    Rule("callbacks.diagnostics.histograms", BOOLEAN, "callbacks.diagnostics.histograms=false"),
    Rule("callbacks.diagnostics.graph", BOOLEAN, "callbacks.diagnostics.graph=false"),
    Rule(
        "callbacks.sequence_gradients.samples",
        int_at_least(1),
        "callbacks.sequence_gradients.samples=256",
    ),
    Rule("callbacks.first_batch.count", int_at_least(1), "callbacks.first_batch.count=32"),
    Rule(
        "callbacks.top_losses.count",
        int_at_least(0, note=" (a number of samples)"),
        "callbacks.top_losses.count=32",
    ),
    # callbacks/weight_averaging=ema|swa; epochs and steps are counted from 0, as Lightning does
    Rule(
        "callbacks.weight_averaging.decay",
        Domain(
            OPEN_FRACTION.accepts,
            "a number in (0, 1), the share of the average each update keeps: it reaches back "
            "about 1 / (1 - decay) steps (0.999: 1,000)",
        ),
        "callbacks.weight_averaging.decay=0.999",
    ),
    Rule(
        "callbacks.weight_averaging.update_every_n_steps",
        int_at_least(1),
        "callbacks.weight_averaging.update_every_n_steps=1",
    ),
    Rule(
        "callbacks.weight_averaging.update_starting_at_step",
        int_at_least(0, note=" (or null: from the first step)"),
        "callbacks.weight_averaging.update_starting_at_step=1000",
    ),
    Rule(
        "callbacks.weight_averaging.update_starting_at_epoch",
        int_at_least(0, note=" (counted from 0)"),
        "callbacks.weight_averaging.update_starting_at_epoch=2",
    ),
    Rule(
        "callbacks.weight_averaging.update_interval",
        one_of("epoch", "step"),
        "callbacks.weight_averaging.update_interval=epoch",
    ),
)

# How to fill a required key (??? in conf/) that was not given.
REQUIRED_EXAMPLES = {
    "ckpt_path": "ckpt_path=outputs/train/runs/<run>/checkpoints/best.ckpt",
    "inputs": "inputs=docs/examples/digits (a folder, a file, or a quoted pattern like '*.png')",
}


def validate_config(cfg: DictConfig, choices: dict[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` naming the first bad key. ``choices`` are Hydra's chosen group
    options (``{"model": "cnn", ...}``), used to phrase the message like the command line."""
    for check in _checks(cfg, choices or {}):
        check()


def config_errors(
    cfg: DictConfig, choices: dict[str, str] | None = None
) -> list[ConfigError | DataError]:
    """Every problem of ``cfg`` at once (``litlab check``), in the order validate_config meets
    them; a check that cannot run because of an earlier problem is left out."""
    errors = []
    for check in _checks(cfg, choices or {}):
        try:
            check()
        except (ConfigError, DataError) as err:  # DataError: a user's folder or table
            errors.append(err)
        except (OmegaConfBaseException, TypeError, KeyError, ValueError):
            continue
    return errors


def _checks(cfg: DictConfig, choices: dict[str, str]) -> Iterator[Callable[[], None]]:
    """The checks in order: the general keys first (they import nothing heavy), the parts
    after; a clash first within each, as it explains more than the one key it makes invalid."""
    yield lambda: _check_required(cfg)
    if "trainer" in cfg:
        yield lambda: _check_trainer_combinations(cfg)
    if "data" in cfg and "monitor" in cfg:
        yield lambda: _check_monitor(cfg)
    if cfg.get("tune"):
        yield lambda: _check_tune(cfg)
    if cfg.get("cv"):
        yield lambda: _check_cv(cfg)
    for rule in RULES:
        yield lambda rule=rule: _check_rule(cfg, rule)
    yield from part_checks(cfg, choices)


def _check_rule(cfg: DictConfig, rule: Rule) -> None:
    # a value whose interpolation fails (data.task=foo breaks ${monitors.${data.task}}) is
    # skipped here: the check of the key it reads (the data set's entry) names the cause
    value = OmegaConf.select(cfg, rule.key, default=_ABSENT, throw_on_resolution_failure=False)
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if value is not _ABSENT and value is not None and not rule.domain.accepts(value):
        example = f", e.g. {rule.example}" if rule.example else ""
        raise ConfigError(
            f"{rule.key}={value!r} is invalid: it must be {rule.domain.expected}{example}."
        )


def learning_rate_key(config: DictConfig | dict) -> str:
    """The key that sets a run's learning rate: a one-cycle schedule sets the optimizer's rate
    at every step from ``scheduler.max_lr``, whatever ``optimizer.lr`` says."""
    target = str((config.get("scheduler") or {}).get("_target_", ""))
    return "scheduler.max_lr" if target.endswith("OneCycleLR") else "optimizer.lr"


def runs_on_one_device(trainer: DictConfig) -> bool:
    """Whether a trainer config asks for exactly one device: devices 1 (or one index, [0]) on
    one node; "auto" may mean every GPU there is."""
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes") or 1
    one = devices in (1, "1") or (OmegaConf.is_list(devices) and len(devices) == 1)
    return one and nodes == 1


def _check_tune(cfg: DictConfig) -> None:
    """The learning-rate finder is chosen as a whole, runs on one device, over a rising range."""
    if "min_lr" not in cfg.tune:  # +tune.only=true alone: keys without the finder
        given = ", ".join(f"tune.{key}" for key in cfg.tune)
        raise ConfigError(
            f"{given} configures the learning-rate finder, which is not chosen: add tune=lr_find, "
            "e.g. python train.py tune=lr_find tune.only=true."
        )
    if not runs_on_one_device(cfg.trainer):
        devices, nodes = cfg.trainer.get("devices"), cfg.trainer.get("num_nodes") or 1
        raise ConfigError(
            f"tune=lr_find runs on one device, not trainer.devices={devices} (num_nodes "
            f"{nodes}). Find the rate with trainer.devices=1 tune.only=true, then train on "
            "every device with optimizer.lr=<the suggestion>."
        )
    low, high = cfg.tune.get("min_lr"), cfg.tune.get("max_lr")
    if is_number(low) and is_number(high) and low >= high:
        raise ConfigError(
            f"tune.min_lr={low} must be below tune.max_lr={high}: the finder raises the rate "
            "from one to the other, e.g. tune.min_lr=1e-6 tune.max_lr=1."
        )


def _check_cv(cfg: DictConfig) -> None:
    """Cross-validation's keys together, and with what cannot run in its folds or refit."""
    cv, folds = cfg.cv, cfg.cv.get("folds")
    if cv.get("refit") is True and folds is None:
        raise ConfigError(
            "cv.refit=true trains once more after a cross-validation, which is not chosen: add "
            "cv.folds, e.g. python train.py cv.folds=5 cv.refit=true."
        )
    fold = cv.get("fold")
    in_range = is_int(folds) and (fold == "refit" or (is_int(fold) and 0 <= fold < folds))
    if fold is not None and not in_range:
        raise ConfigError(
            f"cv.fold={fold!r} is set by litlab in each fold's own config; leave it out. "
            "cv.folds=K trains every fold, e.g. python train.py cv.folds=5."
        )
    if folds is not None and (cfg.get("tune") or {}).get("only") is True:
        raise ConfigError(
            "tune.only=true finds a learning rate without training, and cross-validation "
            f"(cv.folds={folds}) trains: find the rate first (tune=lr_find tune.only=true), then "
            "cross-validate with optimizer.lr=<the suggestion>."
        )
    plateau = "ReduceLROnPlateau" in str((cfg.get("scheduler") or {}).get("_target_", ""))
    if cv.get("refit") is True and plateau:
        raise ConfigError(
            "cv.refit=true trains on every training and validation sample without validating, "
            "but scheduler=plateau steps on a validation metric. Use a scheduler that follows "
            "the epochs (e.g. scheduler=cosine), or cross-validate without cv.refit."
        )


def _check_required(cfg: DictConfig) -> None:
    # Hydra's own node has required keys of its own, filled in at run time
    missing = [key for key in _missing_keys(cfg) if not key.startswith("hydra.")]
    if missing:
        key = missing[0]
        example = REQUIRED_EXAMPLES.get(key, f"{key}=<value>")
        raise ConfigError(
            f"{key} is required and was not given: add it to the command, e.g. {example}."
        )


def _missing_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys left at ??? (OmegaConf.missing_keys would resolve interpolations on the way, and a
    bad value elsewhere would then raise before the rules can name it)."""
    found = []
    for key in node.keys():
        child = child_node(node, key)
        if is_missing(child):
            found.append(f"{prefix}{key}")
        elif isinstance(child, DictConfig) and not is_interpolation(child):
            found += _missing_keys(child, f"{prefix}{key}.")
    return found


def _check_monitor(cfg: DictConfig) -> None:
    """best.ckpt, early stopping and sweeps watch ``monitor.metric``: it must be logged."""
    task = cfg.data.get("task")
    if task not in TASK_METRICS:
        return  # the data set's entry names it (and ${monitors.<task>} cannot resolve)
    metric = cfg.monitor.get("metric")
    num_classes = cfg.data.get("num_classes")
    names = class_names_or_indices(
        cfg.data.get("class_names"), num_classes if is_int(num_classes) else None
    )
    known = validation_metrics(task, names)
    if metric not in known:
        headline = f"val/{TASK_METRICS[task][0]}"
        raise ConfigError(
            f"monitor.metric={metric!r} is not logged by a {task} run, so best.ckpt and early "
            f"stopping could not follow it. Use one of {', '.join(known[:5])}"
            f"{' or a per-class one such as val/f1/<class>' if task == 'multiclass' else ''}, "
            f"e.g. monitors.{task}.metric={headline}."
        )
    if cfg.monitor.get("mode") not in ("min", "max"):
        raise ConfigError(
            f"monitor.mode={cfg.monitor.get('mode')!r} is invalid: it must be min or max, e.g. "
            f"monitors.{task}.mode=max."
        )
    _check_callback_monitors(cfg, epoch_metrics(task, names))


def _check_callback_monitors(cfg: DictConfig, logged: list[str]) -> None:
    """A callback watching a metric nobody logs fails after a whole epoch (Lightning's
    EarlyStopping, ModelCheckpoint): refused here, with the closest name."""
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig):
            continue  # a callback turned off (null)
        watched = OmegaConf.select(node, "monitor", default=None, throw_on_resolution_failure=False)
        if not isinstance(watched, str) or watched in logged:
            continue
        close = difflib.get_close_matches(watched, logged, n=1)
        instead = close[0] if close else logged[0]
        raise ConfigError(
            f"callbacks.{name}.monitor={watched!r} is not a metric this run logs, so the callback "
            f"would fail after the first epoch. Use callbacks.{name}.monitor={instead}; the run "
            f"logs {', '.join(logged[:6])}{' and more' if len(logged) > 6 else ''}."
        )


def _check_nothing_watches_validation(cfg: DictConfig) -> None:
    """Without validation, what watches a validation metric fails after the first epoch."""

    def watched(key: str) -> str:  # unresolvable (a bad data.task): its check names it
        return str(OmegaConf.select(cfg, key, throw_on_resolution_failure=False) or "")

    watching = [
        f"callbacks.{name}"
        for name in ("early_stopping", "best_checkpoint")
        if watched(f"callbacks.{name}.monitor").startswith("val/")
    ]
    plateau = "ReduceLROnPlateau" in watched("scheduler._target_")
    if plateau and watched("monitor.metric").startswith("val/"):
        watching.append("scheduler")
    if watching:
        fixes = " ".join(f"{name}={'none' if name == 'scheduler' else 'null'}" for name in watching)
        raise ConfigError(
            f"trainer.limit_val_batches=0 turns validation off, but {' and '.join(watching)} "
            f"watch a validation metric, which only validation computes. Turn them off too "
            f"({fixes}), or validate on a part, e.g. trainer.limit_val_batches=0.1."
        )


def _check_trainer_combinations(cfg: DictConfig) -> None:
    """Settings that are each valid but that torch or Lightning refuse together."""
    trainer, target = cfg.trainer, (cfg.get("scheduler") or {}).get("_target_", "")
    for key, callback in SWITCHED_BY_CALLBACKS.items():
        if key in trainer:
            raise ConfigError(
                f"trainer.{key} is not set by hand: it follows callbacks.{callback}, one switch "
                f"for one behaviour. Drop trainer.{key} and use callbacks.{callback}=null to turn "
                "it off."
            )
    if trainer.get("max_epochs") == -1 and target.endswith(("OneCycleLR", "CosineAnnealingLR")):
        raise ConfigError(
            f"trainer.max_epochs=-1 (no limit) cannot work with scheduler {target}: it plans "
            "the learning rate over the whole run. Give trainer.max_epochs a number, e.g. "
            "trainer.max_epochs=20, or use scheduler=none, step or plateau."
        )
    if trainer.get("limit_val_batches") in (0, 0.0):
        _check_nothing_watches_validation(cfg)
    precision = str(trainer.get("precision", ""))
    loss = (cfg.get("loss") or {}).get("_target_")
    instead = TORCH_LOSSES[loss].not_in_autocast if loss in TORCH_LOSSES else None
    if "mixed" in precision and instead:
        raise ConfigError(
            f"loss {loss} cannot run under trainer.precision={precision}: torch refuses it "
            f"inside autocast, where it is unstable in half precision. Use {instead}, the "
            "same loss computed stably, or trainer.precision=32-true."
        )
    if (
        precision.startswith("16")
        and trainer.get("gradient_clip_val")
        and (cfg.get("optimizer") or {}).get("fused")
    ):
        raise ConfigError(
            f"trainer.gradient_clip_val with trainer.precision={precision} cannot use a fused "
            "optimizer: Lightning cannot unscale its gradients before clipping. Set "
            "optimizer.fused=false, or use trainer.precision=bf16-mixed."
        )
