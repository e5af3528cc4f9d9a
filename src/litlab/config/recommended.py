"""The settings a data set or a model needs, stated in its own option file and applied unless
the user set them: ``data=iris`` alone trains 100 epochs, ``model=transformer`` alone gets
AdamW and a one-cycle schedule.

A part's option states them under ``recommended``, as dotted keys of the whole config, or a
config group with the option it needs::

    recommended:
      trainer.max_epochs: 100      # a key
      optimizer: adamw             # a group's option ...
      optimizer.weight_decay: 0.05 # ... and a key inside it: goes with that option

The one rule (docs/configs.md, "Recommended settings"): the command line beats an experiment,
an experiment beats the data set, the data set beats the model, the model beats the task's
usual loss and the options' own defaults. In detail, a recommendation is not applied where

- the command line (a sweep's parameters included) or a chosen experiment, debug,
  hparams_search or tune option sets that key, a key inside it or the node that holds it;
- it names a group's option and the user or an experiment chose that group's option
  (``optimizer=sgd``): then the part's keys inside that group go too;
- the chosen config has no such key (``model.kernel_sizes`` is the CNN's, not the MLP's).

Choosing a group's option does not set the keys inside it: ``data=digits model=cnn`` brings
the digits' CNN kernels, ``trainer=gpu`` keeps a data set's epochs. Imports no torch.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from litlab import CONFIG_DIR
from litlab.config.catalog import DIRECTIVE
from litlab.config.checks import learning_rate_key
from litlab.config.losses import TASK_LOSSES
from litlab.errors import ConfigError

log = logging.getLogger(__name__)

RECOMMENDED = "recommended"  # the key of a part's option that holds its recommendations
PARTS = ("model", "data")  # applied in this order: a data set's value beats a model's
# Options the user picks as a whole recipe: the keys they set count as the user's.
RECIPE_GROUPS = ("experiment", "debug", "hparams_search", "tune")
# Set in Hydra's runtime node once a command's recommendations are applied: later calls (the
# run itself, each fold of a cross-validation) apply nothing.
HANDLED = "litlab_recommendations_applied"
_UNSET = object()


@dataclass(frozen=True)
class Applied:
    key: str  # a dotted key, or a config group
    value: Any
    part: str  # "data=iris", "model=transformer" or "data.task=binary"


def apply_recommendations(cfg: DictConfig, quiet: bool = False) -> list[Applied]:
    """Apply the chosen parts' recommendations to ``cfg`` where the user left the keys alone,
    and take the ``recommended`` nodes out of it (a second call does nothing). Returns what was
    applied; logs it in one line unless ``quiet``. A config without Hydra's record of its
    command line (built by hand, loaded from a file) is the user's in every key: nothing is
    applied."""
    hydra = _hydra_node(cfg)
    choices = _choices(hydra)
    stated = _stated(cfg, choices)
    if hydra is None or HANDLED in hydra.runtime:
        # a second call: the config may since hold a stopped run's own choices (resume=auto),
        # which the command line does not name but which are the user's all the same
        return []
    with read_write(hydra), open_dict(hydra.runtime):
        hydra.runtime[HANDLED] = True
    dirs = _config_dirs(hydra)
    chosen = _set_by_user(hydra, choices, dirs)
    groups = {key for key in chosen if key in choices}  # optimizer=sgd: a group's option
    keys = chosen - groups
    applied, passed_over = [], set()  # passed over: (group, the part that recommended it)
    for key, (value, part) in stated.items():
        if not _is_group(key) or choices.get(key) == value:
            continue
        if key in groups:
            passed_over.add((key, part))
            continue
        users_keys = [k for k in keys if k.startswith(f"{key}.")]
        _choose_option(cfg, key, value, users_keys, hydra, dirs)
        applied.append(Applied(key, value, part))
    for key, (value, part) in stated.items():
        if _is_group(key) or _blocked(key, keys) or (key.split(".")[0], part) in passed_over:
            continue
        current = OmegaConf.select(cfg, key, default=_UNSET, throw_on_missing=False)
        if current is _UNSET or _same(current, value):
            continue  # _UNSET: the chosen config has no such key (another model's, say)
        OmegaConf.update(cfg, key, value, merge=False, force_add=False)
        applied.append(Applied(key, value, part))
    typed = set(_override_keys(list(hydra.overrides.task)))
    _refuse_an_unused_rate(cfg, typed, choices.get("scheduler"), applied)
    if applied and not quiet:
        log.info(applied_line(applied))
    return applied


def _refuse_an_unused_rate(
    cfg: DictConfig, typed: set[str], scheduler: str | None, applied: list[Applied]
) -> None:
    """A learning rate typed on the command line for the optimizer under a one-cycle schedule
    would be ignored without a word (a search over it would search nothing): refused, naming
    the key that sets the rate. A resumed run continues with the command it was started by."""
    rate_key = learning_rate_key(cfg)
    if rate_key == "optimizer.lr" or "optimizer.lr" not in typed or cfg.get("resume"):
        return
    recommended = next((a for a in applied if a.key == "scheduler"), None)
    by = f", recommended by {recommended.part}" if recommended else ""
    scheduler = recommended.value if recommended else scheduler
    # a key of a recommended option counts only with the option chosen on the command line
    peak = f"scheduler={scheduler} {rate_key}=<value>" if recommended else f"{rate_key}=<value>"
    raise ConfigError(
        f"optimizer.lr={_text(OmegaConf.select(cfg, 'optimizer.lr'))} would be ignored: the "
        f"one-cycle schedule (scheduler={scheduler}{by}) sets the learning rate at every step, "
        f"rising to {rate_key}={_text(OmegaConf.select(cfg, rate_key))} and falling from it. "
        f"Give the peak rate as {peak} instead, or keep optimizer.lr with another "
        "schedule (scheduler=none, cosine, step or plateau)."
    )


def applied_line(applied: Iterable[Applied]) -> str:
    """``Recommended settings applied (...): trainer.max_epochs=100 (data=iris), ...``."""
    listed = ", ".join(f"{a.key}={_text(a.value)} ({a.part})" for a in applied)
    return f"Recommended settings applied (override any on the command line): {listed}"


def _stated(cfg: DictConfig, choices: dict[str, str]) -> dict[str, tuple[Any, str]]:
    """Every recommendation of the chosen parts, lowest precedence first, each with the part
    that states it; the ``recommended`` nodes taken out of ``cfg`` (a second call finds only
    the task's loss, then already chosen)."""
    nodes = {part: cfg.get(part) for part in PARTS}
    stated: dict[str, tuple[Any, str]] = {}
    # a table's task is read from its file: one not given yet, or unreadable, is reported by
    # the checks that follow
    task = OmegaConf.select(
        cfg, "data.task", default=None, throw_on_missing=False, throw_on_resolution_failure=False
    )
    if task in TASK_LOSSES:
        stated["loss"] = (TASK_LOSSES[task], f"data.task={task}")
    for part, node in nodes.items():
        if not OmegaConf.is_dict(node) or RECOMMENDED not in node:
            continue
        given = OmegaConf.to_container(node[RECOMMENDED], resolve=False) or {}
        for key, value in given.items():
            stated.pop(key, None)  # re-inserted: a later part's value comes later
            stated[key] = (value, f"{part}={choices.get(part, '?')}")
        with open_dict(node):
            del node[RECOMMENDED]
    return stated


def _is_group(key: str) -> bool:
    return "." not in key


def _blocked(key: str, chosen: set[str]) -> bool:
    """Whether the user set ``key``, a key inside it, or a node that holds it."""
    return any(key == c or key.startswith(f"{c}.") or c.startswith(f"{key}.") for c in chosen)


def _same(current: Any, value: Any) -> bool:
    plain = OmegaConf.to_container(current) if OmegaConf.is_config(current) else current
    return plain == value


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(map(_text, value)) + "]"
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return str(value)


# -- what the user set -------------------------------------------------------------------------
def _set_by_user(hydra: DictConfig, choices: dict[str, str], dirs: list[Path]) -> set[str]:
    """The keys and the groups' options that the command line, and the recipe options it
    chose, set."""
    chosen = set(_override_keys(list(hydra.overrides.task)))
    for group in RECIPE_GROUPS:
        option = choices.get(group)
        if option and option != "None":
            chosen |= set(_option_keys(group, option, dirs))
    return chosen


def _override_keys(overrides: list[str]) -> Iterator[str]:
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if not key.startswith("hydra"):
            yield key.split("@")[0]


def _option_keys(group: str, option: str, dirs: list[Path], seen: frozenset = frozenset()):
    """The keys a recipe option's file sets (the options of its own group it includes too),
    and the groups its defaults list overrides."""
    path = _option_file(group, option, dirs)
    if path is None or path in seen:
        return
    text = path.read_text()
    content = yaml.safe_load(text) or {}
    package = "" if _package(text) == "_global_" else group
    for entry in content.pop("defaults", None) or []:
        if isinstance(entry, str) and entry != "_self_":
            yield from _option_keys(group, entry, dirs, seen | {path})
        elif isinstance(entry, dict):
            for name in entry:
                words = str(name).split()
                if words[0] == "override":
                    yield words[-1].lstrip("/").split("@")[0].replace("/", ".")
    yield from _leaves(content, package)


def _package(text: str) -> str | None:
    """The ``# @package`` of a config file's header (the comments before its first key)."""
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            break
        if line.startswith(DIRECTIVE):
            return line.removeprefix(DIRECTIVE).strip()
    return None


def _leaves(node: Any, prefix: str) -> Iterator[str]:
    """The dotted keys of a node's values (a value may be a list or null), not of its dicts."""
    if not isinstance(node, dict) or not node:
        if prefix:
            yield prefix
        return
    for key, value in node.items():
        yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))


def _config_dirs(hydra: DictConfig | None) -> list[Path]:
    """The folders Hydra composed from, in the order it searches them (litlab's conf/, then a
    ``--config-dir``); conf/ where Hydra has no record."""
    dirs = []
    if hydra is not None:
        for source in hydra.runtime.get("config_sources", []):
            if source.get("schema") == "file":
                dirs.append(Path(source.path))
    return dirs if CONFIG_DIR in dirs else [CONFIG_DIR, *dirs]


# -- Hydra's record of the choices -------------------------------------------------------------
def _hydra_node(cfg: DictConfig) -> DictConfig | None:
    if "hydra" in cfg:
        return cfg.hydra
    return HydraConfig.get() if HydraConfig.initialized() else None


def _choices(hydra: DictConfig | None) -> dict[str, str]:
    if hydra is None:
        return {}
    return {str(k): str(v) for k, v in hydra.runtime.choices.items()}


def _choose_option(
    cfg: DictConfig,
    group: str,
    option: str,
    users_keys: list[str],
    hydra: DictConfig,
    dirs: list[Path],
) -> None:
    """Swap ``cfg.<group>`` for the option ``group/option`` (found as Hydra finds it), keep the
    values the user set inside the group (``optimizer.lr=0.01``, a ``+`` key, a ``~`` deletion),
    and record the choice where the reports read it (Hydra's runtime choices)."""
    path = _option_file(group, option, dirs)
    if path is None:
        raise ConfigError(
            f"A part recommends {group}={option}, but no {group}/{option}.yaml is in the config "
            f"folders ({', '.join(map(str, dirs))}): add it, or name an option that exists "
            f"(`litlab ls {group}`)."
        )
    old = cfg[group]
    with open_dict(cfg):
        cfg[group] = OmegaConf.create(_option_node(path, group, dirs))
    for key in users_keys:
        value = OmegaConf.select(old, key.split(".", 1)[1], default=_UNSET)
        if value is _UNSET:  # deleted with ~
            parent, _, name = key.rpartition(".")
            node = OmegaConf.select(cfg, parent)
            if OmegaConf.is_dict(node) and name in node:
                with open_dict(node):
                    del node[name]
        else:
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    nodes = [hydra, HydraConfig.get() if HydraConfig.initialized() else None]
    for node in {id(n): n for n in nodes if n is not None}.values():
        with read_write(node), open_dict(node):
            node.runtime.choices[group] = option


def _option_file(group: str, option: str, dirs: list[Path]) -> Path | None:
    return next(
        (d / group / f"{option}.yaml" for d in dirs if (d / group / f"{option}.yaml").is_file()),
        None,
    )


def _option_node(path: Path, group: str, dirs: list[Path]) -> dict:
    """A group option's content with the options of the same group its defaults list names
    merged under it, without its own recommendations."""
    content = yaml.safe_load(path.read_text()) or {}
    node: dict = {}
    for entry in content.pop("defaults", None) or []:
        base = _option_file(group, entry, dirs) if isinstance(entry, str) else None
        if base is not None and base != path:
            node |= _option_node(base, group, dirs)
    content.pop(RECOMMENDED, None)
    return node | content


__all__ = ["RECOMMENDED", "Applied", "applied_line", "apply_recommendations"]
