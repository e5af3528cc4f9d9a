"""Resuming, in one place: which run ``resume=auto|force`` continues, whether a run has
finished, whether a checkpoint fits this config, what a resumed run keeps, and the command that
continues a stopped run.

Two ways in, one lookup each. From the command line, a Hydra callback looks the run up in
Hydra's composed config before the run folder is created and points the config at it
(``hydra.run.dir``, ``ckpt_path``, ``hydra.output_subdir``: :func:`continue_in_place`), which
leaves ``resume`` resolved (null) for :func:`apply`. ``train(cfg)`` called from Python, and a
DDP worker started in the run's folder, look it up in :func:`apply`.
"""

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

from litlab.config.checks import RESUME_MODES
from litlab.config.compose import escaped, in_multirun, plain_config
from litlab.config.entries import MODEL_SWITCHES, part_class, starting_weight_keys
from litlab.errors import ConfigError
from litlab.run_folder import (
    CHECKPOINTS,
    HYDRA_RECORD,
    LAST_CHECKPOINT,
    METRICS,
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


@dataclass(frozen=True)
class Continuation:
    run: Path
    checkpoint: Path


def runs_folder(cfg: DictConfig) -> Path:
    """Where the single runs of this task_name live (conf/hydra/default.yaml's run.dir)."""
    return Path(cfg.paths.log_dir) / cfg.task_name / "runs"


def latest_resumable_run(runs: Path) -> Path | None:
    """Run folders are named <date>_<time>, so the last in name order is the latest."""
    candidates = sorted(runs.glob(f"*/{CHECKPOINTS}/{LAST_CHECKPOINT}")) if runs.is_dir() else []
    return candidates[-1].parent.parent if candidates else None


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
    return Continuation(run, last_checkpoint(run))


def continue_in_place(config: DictConfig) -> None:
    """For ``resume=auto|force`` from the command line, before Hydra creates the run folder:
    point Hydra's composed ``config`` at the run to continue (its folder, a fresh
    ``.hydra.N`` record beside its first, its last checkpoint)."""
    resume = config.get("resume")
    if resume not in RESUME_MODES:
        return  # null, or a bad value that validation names
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
        return
    log.warning("resume=%s: continuing %s", resume, continuation.run)
    with read_write(config.hydra), open_dict(config):
        config.hydra.run.dir = escaped(continuation.run)
        config.hydra.output_subdir = free_path(continuation.run / HYDRA_RECORD).name
        config.ckpt_path = escaped(continuation.checkpoint)
        config.resume = None  # looked up: the run continues from ckpt_path in its folder


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
    cfg.paths.output_dir = str(continuation.run)
    cfg.ckpt_path = str(continuation.checkpoint)


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
