"""Resuming, in one place: which run ``resume=auto|force`` continues, whether a run has
finished, whether a checkpoint fits this config, what a resumed run keeps, and the command that
continues a stopped run.

Two ways in, one lookup each. From the command line, a Hydra callback looks the run up in
Hydra's composed config before the run folder is created and points the config at it
(``hydra.run.dir``, ``ckpt_path``, ``hydra.output_subdir``: :func:`continue_in_place`), which
leaves ``resume`` resolved (null) for :func:`apply`. ``train(cfg)`` called from Python, and a
DDP worker started in the run's folder, look it up in :func:`apply`. Both continue the run with
its own config (:func:`take_run_config`): what the command leaves out comes from the run, not
from conf/, and what the command changes is refused unless continuing may change it.
"""

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from litlab.config.checks import RESUME_MODES
from litlab.config.compose import escaped, in_multirun, plain_config
from litlab.config.entries import MODEL_SWITCHES, part_class, starting_weight_keys
from litlab.errors import ConfigError, listed
from litlab.ranks import is_launched_worker
from litlab.run_folder import (
    CHECKPOINTS,
    CONFIG,
    HYDRA_RECORD,
    HYDRA_SETTINGS,
    LAST_CHECKPOINT,
    METRICS,
    cv_part_folders,
    free_path,
    is_finished,
    last_checkpoint,
)

log = logging.getLogger(__name__)

# What the weights and optimizer state depend on; batch size, data location etc. may change.
RESUME_MUST_MATCH = {
    "model": None,  # every key but MODEL_SWITCHES and the STARTING_WEIGHTS ones
    "loss": None,
    "data": ("task", "num_classes", "num_outputs", "num_features", "input_shape"),
}

# The command's own keys, not the run's: where files are, which run to continue, what the
# console shows. A continued run neither compares them with the stopped run's nor takes them.
THIS_COMMANDS_KEYS = ("paths", "task_name", "resume", "ckpt_path", "verbose", "stop_on_failure")
# What the command line may change when it continues a run: how long it trains (the README's
# `trainer.max_epochs=20 resume=auto`), the hardware it runs on, where and how the data is
# read, how the network runs, what the console shows and whether it tests at the end. The
# rest is what the checkpoint's weights and optimizer state were trained with.
CONTINUING_MAY_CHANGE = (
    "tags",
    "notes",
    "logger",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "data.data_dir",
    "data.download",
    "data.num_workers",
    "data.on_device",
    *(f"model.{switch}" for switch in MODEL_SWITCHES),
    "callbacks.progress_bar",
    "callbacks.model_summary",
    "test",
)
_ABSENT = object()  # a key one of the two configs lacks


@dataclass(frozen=True)
class Continuation:
    run: Path
    checkpoint: Path


def runs_folder(cfg: DictConfig) -> Path:
    """Where the single runs of this task_name live (conf/hydra/default.yaml's run.dir)."""
    return Path(cfg.paths.log_dir) / cfg.task_name / "runs"


def latest_resumable_run(runs: Path) -> Path | None:
    """Run folders are named <date>_<time>, so the last in name order is the latest. A
    cross-validation's checkpoints are in its folds' run folders, inside its own."""
    if not runs.is_dir():
        return None
    found = {path.parents[1] for path in runs.glob(f"*/{CHECKPOINTS}/{LAST_CHECKPOINT}")}
    for path in runs.glob(f"*/*/{CHECKPOINTS}/{LAST_CHECKPOINT}"):
        if path.parents[1] in cv_part_folders(path.parents[2]):
            found.add(path.parents[2])
    return max(found, key=lambda run: run.name, default=None)


def resumable_checkpoint(run: Path) -> Path:
    """What a stopped run continues from: its last.ckpt; a cross-validation's, its stopped
    fold's (or refit's), else its last fold's (it stopped between two folds)."""
    own = last_checkpoint(run)
    parts = [last_checkpoint(part) for part in cv_part_folders(run)]
    saved = [checkpoint for checkpoint in parts if checkpoint.is_file()]
    if own.is_file() or not saved:
        return own
    stopped = [checkpoint for checkpoint in saved if not is_finished(checkpoint.parents[1])]
    return (stopped or saved)[-1]


def find_continuation(cfg: DictConfig) -> Continuation | None:
    """The run that ``cfg.resume`` continues, or None when there is none (a new run starts).
    ``resume=auto`` refuses a run that has finished; ``resume=force`` continues it."""
    resume = cfg.get("resume")
    if resume not in RESUME_MODES:
        return None
    run = latest_resumable_run(runs_folder(cfg))
    if run is None:
        return None
    if is_finished(run) and resume == "auto":
        raise ConfigError(
            f"resume=auto: the latest run of task_name={cfg.task_name}, {run}, has finished (it "
            f"wrote {METRICS}), so it is not continued. Start a new run by leaving out resume, "
            "or continue that one anyway with resume=force (e.g. with a larger "
            "trainer.max_epochs)."
        )
    return Continuation(run, resumable_checkpoint(run))


def continue_in_place(config: DictConfig) -> str | None:
    """For ``resume=auto|force`` from the command line, before Hydra creates the run folder:
    point Hydra's composed ``config`` at the run to continue (its folder, a fresh
    ``.hydra.N`` record beside its first, its last checkpoint) and give it that run's config.
    Returns the line to log once the run's log is open."""
    resume = config.get("resume")
    if resume not in RESUME_MODES:
        return None  # null, or a bad value that validation names
    given = [*config.hydra.overrides.task, *config.hydra.overrides.hydra]
    chosen = [arg for arg in given if arg.startswith(("hydra.run.dir=", "ckpt_path="))]
    if chosen:
        raise _chosen_with(resume, chosen[0])
    continuation = find_continuation(config)
    if continuation is None:
        log.warning(
            "resume=%s: no run with checkpoints/last.ckpt in %s; a new one starts.",
            resume,
            runs_folder(config),
        )
        with open_dict(config):
            config.resume = None  # looked up: nothing to continue
        return None
    note = take_run_config(config, config.hydra, continuation)
    with read_write(config.hydra), open_dict(config):
        config.hydra.run.dir = escaped(continuation.run)
        config.hydra.output_subdir = free_path(continuation.run / HYDRA_RECORD).name
        config.ckpt_path = escaped(continuation.checkpoint)
        config.resume = None  # looked up: the run continues from ckpt_path in its folder
    return note


def refuse_sweeps(config: DictConfig) -> None:
    """``resume=auto|force`` continues one run: a multirun with it is refused."""
    resume = config.get("resume")
    if resume in RESUME_MODES:
        raise _no_sweeps(resume)


def apply(cfg: DictConfig) -> None:
    """Point ``cfg`` (run folder, ckpt_path) at the run that ``cfg.resume`` continues. After the
    command line's lookup it already does; from Python this is the lookup."""
    resume = cfg.get("resume")
    if resume not in RESUME_MODES:
        return
    if in_multirun():
        raise _no_sweeps(resume)
    continuation = find_continuation(cfg)
    given = cfg.get("ckpt_path")
    expected = continuation.checkpoint if continuation else None
    if given and (expected is None or Path(given).resolve() != expected.resolve()):
        raise _chosen_with(resume, f"ckpt_path={given}")
    if continuation is None:
        return
    made = Path(cfg.paths.output_dir)
    if made.is_dir() and made.resolve() != continuation.run.resolve():
        # Hydra made a new run folder: the command line could not look the run up first
        raise ConfigError(
            f"resume={resume} is looked up before Hydra creates a run folder, which did not "
            f"happen here (e.g. conf/hydra without litlab's callbacks), so this run got "
            f"the new folder {made}. Continue {continuation.run} with "
            f"ckpt_path={continuation.checkpoint} and hydra.run.dir={continuation.run} instead."
        )
    # the command line's overrides and group choices, also in a DDP worker (whose cfg has no
    # hydra node); a config built without Hydra has none
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    note = take_run_config(cfg, hydra, continuation)
    if not is_launched_worker():  # rank zero says it
        log.info(note)
    cfg.paths.output_dir = str(continuation.run)
    cfg.ckpt_path = str(continuation.checkpoint)


# -- the stopped run's config ----------------------------------------------------------------
def take_run_config(cfg: DictConfig, hydra: DictConfig | None, continuation: Continuation) -> str:
    """Continue the stopped run with its own config (its newest config.yaml): each key this
    command does not set on the command line takes the run's value, not conf/'s; a key it sets
    to another value is refused unless continuing may change it (:data:`CONTINUING_MAY_CHANGE`).
    ``hydra`` holds the command line (``overrides.task``, ``runtime.choices``); None: a config
    built without Hydra, whose every key counts as chosen. Returns the line to log."""
    stored = _recorded_config(continuation.run)
    resume = cfg.get("resume")
    if stored is None:  # saved by a litlab that kept no config.yaml: nothing to compare
        return f"resume={resume}: continuing {continuation.run}"
    choices_then = _recorded_choices(continuation.run)
    given = _given_keys(hydra, choices_then, set(cfg.keys()))
    differences = _differences(stored, cfg)
    changed = {key: values for key, values in differences.items() if _is_given(key, given)}
    refused = [key for key in changed if not _matches(key, CONTINUING_MAY_CHANGE)]
    if refused:
        raise _changes_the_run(resume, continuation.run, {key: changed[key] for key in refused})
    taken = {key: old for key, (old, _) in differences.items() if key not in changed}
    _set_keys(cfg, {key: old for key, old in taken.items() if old is not _ABSENT})
    if hydra is not None and choices_then is not None:
        _take_choices(hydra, choices_then, given)
    return _continuing_line(resume, continuation.run, taken, changed)


def _recorded_config(run: Path) -> dict | None:
    """The config the run last started with: its newest config.yaml (config.1.yaml after one
    resume ...), resolved when it was written."""
    record = _newest(run / CONFIG)
    return None if record is None else OmegaConf.to_container(OmegaConf.load(record))


def _recorded_choices(run: Path) -> dict | None:
    """The group options (model=cnn ...) the run last started with, from Hydra's newest record
    of its command line; None for a run started from Python, which leaves none."""
    record = _newest(run / HYDRA_RECORD)
    if record is None or not (record / HYDRA_SETTINGS).is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(record / HYDRA_SETTINGS).hydra.runtime.choices)


def _newest(path: Path) -> Path | None:
    """The newest of ``path``, ``name.1.ext``, ``name.2.ext`` ... (``free_path``'s names)."""
    newest, number = None, 0
    while path.with_name(_numbered(path, number)).exists():
        newest, number = path.with_name(_numbered(path, number)), number + 1
    return newest


def _numbered(path: Path, number: int) -> str:
    return path.name if number == 0 else f"{path.stem}.{number}{path.suffix}"


def _given_keys(
    hydra: DictConfig | None, choices_then: dict | None, top_keys: set[str]
) -> list[str]:
    """The dotted keys the command line sets. A group option (model=cnn) sets the keys under
    its group (every key, for an option of the whole config such as experiment=...) unless the
    run chose the same option; then the run's own values under it stand."""
    if hydra is None:
        return [""]  # "" lies above every key
    choices_now = hydra.runtime.choices
    given = []
    for override in OverridesParser.create().parse_overrides(list(hydra.overrides.task)):
        key = override.key_or_group
        if key not in choices_now:
            given.append(key)
        elif choices_then is None or choices_then.get(key) != choices_now.get(key):
            given.append(key.replace("/", ".") if key.split("/")[0] in top_keys else "")
    return given


def _differences(stored: dict, cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (the run's value, this command's)} for each key whose values differ, both
    resolved; a key one side lacks shows as _ABSENT. The command's own keys, and keys formed
    from its paths (logger.*.save_dir, checkpoint dirpath ...), are not compared."""
    written = OmegaConf.to_container(cfg, resolve=False)
    written.pop("hydra", None)
    return _differing(stored, written, cfg, "")


def _differing(old: dict, written: dict, cfg: DictConfig, prefix: str) -> dict:
    found = {}
    for key in sorted(set(old) | set(written), key=str):
        dotted = f"{prefix}{key}"
        then, now = old.get(key, _ABSENT), written.get(key, _ABSENT)
        if _matches(dotted, THIS_COMMANDS_KEYS) or _formed_from_this_command(now):
            continue
        if isinstance(then, dict) and isinstance(now, dict) and _same_part(then, now):
            found |= _differing(then, now, cfg, f"{dotted}.")
            continue
        now = _ABSENT if now is _ABSENT else _resolved(cfg, dotted, now)
        if then != now:
            found[dotted] = (then, now)
    return found


def _same_part(then: dict, now: dict) -> bool:
    """Two nodes of one class compare key by key; of two classes (the run's MLP, conf/'s
    default model) as a whole, so that the run's node is taken whole, without the other
    class's keys."""
    return then.get("_target_") == now.get("_target_")


def _formed_from_this_command(written: Any) -> bool:
    """A value interpolated from where this command's files are (or its clock)."""
    return isinstance(written, str) and any(
        source in written for source in ("${paths.", "${hydra:", "${oc.env:", "${now:")
    )


def _resolved(cfg: DictConfig, dotted: str, written: Any) -> Any:
    try:
        value = OmegaConf.select(cfg, dotted, throw_on_missing=True)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    except OmegaConfBaseException:  # e.g. formed from the run folder, not made yet
        return written


def _matches(dotted: str, keys: tuple[str, ...] | list[str]) -> bool:
    """``dotted`` is one of ``keys`` or lies under one ("" lies above every key)."""
    return any(key == "" or dotted == key or dotted.startswith(f"{key}.") for key in keys)


def _is_given(dotted: str, given: list[str]) -> bool:
    """The command line sets ``dotted``, a key under it, or a node above it."""
    return _matches(dotted, given) or any(key.startswith(f"{dotted}.") for key in given)


def _set_keys(cfg: DictConfig, values: dict[str, Any]) -> None:
    with read_write(cfg), open_dict(cfg):
        for dotted, value in values.items():
            OmegaConf.update(cfg, dotted, value, merge=False, force_add=True)


def _take_choices(hydra: DictConfig, choices_then: dict, given: list[str]) -> None:
    """The run's group options where the command line names none, so that the records and
    TensorBoard's hyperparameters say model=cnn for a CNN."""
    with read_write(hydra), open_dict(hydra):
        for group, choice in choices_then.items():
            own = group.startswith(("hydra", "paths"))  # Hydra's and the command's own
            if not own and group in hydra.runtime.choices:
                if not _matches(group.replace("/", "."), given):
                    hydra.runtime.choices[group] = choice


def _continuing_line(resume: str, run: Path, taken: dict, changed: dict) -> str:
    line = f"resume={resume}: continuing {run} with its own config"
    shown = [f"{key}={_shown(value)}" for key, value in taken.items() if value is not _ABSENT]
    if shown:
        line += f"; taken from it, not from conf/: {listed(shown, 8)}"
    if changed:
        line += f"; this command changes {_changes(changed)}"
    return line


def _changes_the_run(resume: str, run: Path, changed: dict) -> ConfigError:
    return ConfigError(
        f"resume={resume} continues {run} with its own config, but the command changes "
        f"{_changes(changed)}. Drop {'that override' if len(changed) == 1 else 'those overrides'}"
        f" to continue it, or start a new run without resume={resume}. (A continued run may "
        "change trainer.max_epochs or max_steps to train longer, the hardware, and where its "
        "data and files are.)"
    )


def _changes(changed: dict) -> str:
    # a changed group option can differ in a dozen keys
    return listed(
        [f"{key} ({_shown(then)} -> {_shown(now)})" for key, (then, now) in changed.items()], 8
    )


def _shown(value: Any) -> str:
    """A value as the command line writes it, cut short."""
    if value is _ABSENT:
        return "unset"
    if isinstance(value, dict) and "_target_" in value:
        return f"{value['_target_']}(...)"  # a part, by its class
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _chosen_with(resume: str, override: str) -> ConfigError:
    return ConfigError(
        f"resume={resume} chooses the run folder and checkpoint itself, so {override} cannot be "
        "given with it. Leave out resume to start from that checkpoint in a new folder, or "
        "leave out hydra.run.dir and ckpt_path."
    )


def _no_sweeps(resume: str) -> ConfigError:
    return ConfigError(
        f"resume={resume} continues one run and cannot be combined with --multirun; resume "
        "each run of a sweep with its own ckpt_path=<run>/checkpoints/last.ckpt."
    )


def refuse_to_overwrite(output_dir: Path, ckpt_path: str | None) -> None:
    """A run folder that already holds checkpoints belongs to another run, unless we resume it."""
    existing = list(output_dir.rglob("*.ckpt")) if output_dir.is_dir() else []
    if not existing:
        return
    if ckpt_path and Path(ckpt_path).resolve() in [path.resolve() for path in existing]:
        return
    raise ConfigError(
        f"The run folder {output_dir} already holds checkpoints of another run, and this run "
        "would overwrite them. Leave hydra.run.dir unset to get a fresh folder, or continue that "
        f"run with ckpt_path={existing[0].parent}/last.ckpt."
    )


def check_checkpoint_fits(cfg: DictConfig, checkpoint: dict) -> None:
    """Continuing needs the model, loss and kind of data of the checkpoint's own run. The keys
    that only set how the weights started take the checkpoint's values (absent: the key is
    newer than that run, whose weights started as null says), so the run's records tell how
    its weights really started."""
    stored, current = checkpoint["hyper_parameters"]["run_config"], plain_config(cfg)
    # how the network runs, or how its weights started: the checkpoint holds the weights
    free = set(MODEL_SWITCHES)
    target = (current.get("model") or {}).get("_target_")
    if target and target == (stored.get("model") or {}).get("_target_"):  # else: named below
        starting = starting_weight_keys(part_class(target, "model"))
        free |= starting
        with read_write(cfg), open_dict(cfg):
            for key in starting & set(current["model"]):
                cfg.model[key] = stored["model"].get(key)
    differing = []
    for group, keys in RESUME_MUST_MATCH.items():
        old, new = stored.get(group) or {}, current.get(group) or {}
        for key in keys or sorted(set(old) | set(new)):
            if (group == "model" and key in free) or _added_and_off(key, old, new):
                continue
            if old.get(key) != new.get(key):
                differing.append(f"{group}.{key}")
    if differing:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} was trained with other settings for "
            f"{', '.join(differing)} (its run: "
            + ", ".join(f"{key}={_lookup(stored, key)!r}" for key in differing[:3])
            + "). Resume with the first run's overrides, listed in its .hydra/overrides.yaml."
        )


def _added_and_off(key: str, old: dict, new: dict) -> bool:
    """An option one side does not know yet (added to litlab after that run), off on the
    other: the network computes what it did."""
    return (key not in old and new.get(key) in (None, False)) or (
        key not in new and old.get(key) in (None, False)
    )


def _lookup(config: dict, dotted: str) -> object:
    group, key = dotted.split(".", 1)
    return config.get(group, {}).get(key)


def set_aside_result(run: Path) -> None:
    """A forced resume of a finished run: its metrics.json becomes metrics.1.json, so that the
    run counts as unfinished until it writes a new one."""
    if is_finished(run):
        (run / METRICS).rename(free_path(run / METRICS))


def continue_command(checkpoint: Path) -> str:
    """How to continue a stopped run: the command that started it with ``resume=auto``, or
    (outside a single command-line run) ``ckpt_path=...``."""
    if not HydraConfig.initialized() or in_multirun():
        return f"Continue from it with ckpt_path={shlex.quote(str(checkpoint))}."
    overrides = [
        shlex.quote(o)
        for o in HydraConfig.get().overrides.task
        if not o.startswith(("ckpt_path=", "resume="))
    ]
    return (
        "Continue where it stopped with "
        f"`python train.py {' '.join([*overrides, 'resume=auto'])}` (or ckpt_path={checkpoint})."
    )


def last_good_checkpoint(checkpoints: Path) -> str:
    """The checkpoint a failed run can be continued from, in words."""
    last = checkpoints / LAST_CHECKPOINT
    if last.exists():
        return f"the last good checkpoint is {last}."
    return "no checkpoint had been saved yet."
