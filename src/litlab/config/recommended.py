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
from litlab.config.catalog import shipped_options
from litlab.config.losses import TASK_LOSSES

log = logging.getLogger(__name__)

RECOMMENDED = "recommended"  # the key of a part's option that holds its recommendations
PARTS = ("model", "data")  # applied in this order: a data set's value beats a model's
# Options the user picks as a whole recipe: the keys they set count as the user's.
RECIPE_GROUPS = ("experiment", "debug", "hparams_search", "tune")
_UNSET = object()


@dataclass(frozen=True)
class Applied:
    key: str  # a dotted key, or a config group
    value: Any
    part: str  # "data=iris", "model=transformer" or "data.task=binary"


def apply_recommendations(cfg: DictConfig) -> list[Applied]:
    """Apply the chosen parts' recommendations to ``cfg`` where the user left the keys alone,
    and take the ``recommended`` nodes out of it (a second call does nothing). Returns what was
    applied; logs it in one line."""
    stated = _stated(cfg)
    choices = _choices(cfg)
    chosen = _set_by_user(cfg, choices)
    groups = {key for key in chosen if key in choices}  # optimizer=sgd: a group's option
    keys = chosen - groups
    applied, passed_over = [], set()
    for key, (value, part) in stated.items():
        if _is_group(key):
            if key in groups or choices.get(key) == value:
                passed_over.add(key)  # and the part's keys inside it
                continue
            _choose_option(cfg, key, value)
            applied.append(Applied(key, value, part))
    for key, (value, part) in stated.items():
        if _is_group(key) or _blocked(key, keys) or key.split(".")[0] in passed_over:
            continue
        if OmegaConf.select(cfg, key, default=_UNSET, throw_on_missing=False) is _UNSET:
            continue  # the chosen config has no such key: another model's, say
        if _same(OmegaConf.select(cfg, key), value):
            continue
        OmegaConf.update(cfg, key, value, merge=False, force_add=False)
        applied.append(Applied(key, value, part))
    if applied:
        log.info(
            "Recommended settings applied (override any on the command line): %s", describe(applied)
        )
    return applied


def describe(applied: Iterable[Applied]) -> str:
    """``trainer.max_epochs=100 (data=iris), loss=mse (data.task=regression)``."""
    return ", ".join(f"{a.key}={_text(a.value)} ({a.part})" for a in applied)


def recommendations(option: dict[str, Any]) -> dict[str, Any]:
    """What a part's option file (read as YAML) recommends."""
    return dict(option.get(RECOMMENDED) or {})


def _stated(cfg: DictConfig) -> dict[str, tuple[Any, str]]:
    """Every recommendation of the chosen parts, lowest precedence first, each with the part
    that states it; the ``recommended`` nodes taken out of ``cfg`` (a second call finds only
    the task's loss, then already chosen)."""
    nodes = {part: cfg.get(part) for part in PARTS}
    choices = _choices(cfg)
    stated: dict[str, tuple[Any, str]] = {}
    task = OmegaConf.select(cfg, "data.task", default=None, throw_on_missing=False)
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
def _set_by_user(cfg: DictConfig, choices: dict[str, str]) -> set[str]:
    """The keys and the groups' options that the command line, and the recipe options it
    chose, set."""
    hydra = _hydra_node(cfg)
    overrides = list(hydra.overrides.task) if hydra is not None else []
    chosen = set(_override_keys(overrides))
    for group in RECIPE_GROUPS:
        option = choices.get(group)
        if option and option != "None":
            chosen |= set(_option_keys(group, option, _config_dirs(hydra)))
    return chosen


def _override_keys(overrides: list[str]) -> Iterator[str]:
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if not key.startswith("hydra"):
            yield key.split("@")[0]


def _option_keys(group: str, option: str, dirs: list[Path], seen: frozenset = frozenset()):
    """The keys a recipe option's file sets (the options of its own group it includes too),
    and the groups its defaults list overrides."""
    path = next(
        (d / group / f"{option}.yaml" for d in dirs if (d / group / f"{option}.yaml").is_file()),
        None,
    )
    if path is None or path in seen:
        return
    content = yaml.safe_load(path.read_text()) or {}
    package = "" if "@package _global_" in path.read_text().split("\n", 1)[0] else group
    for entry in content.pop("defaults", None) or []:
        if isinstance(entry, str) and entry != "_self_":
            yield from _option_keys(group, entry, dirs, seen | {path})
        elif isinstance(entry, dict):
            for name in entry:
                words = str(name).split()
                if words[0] == "override":
                    yield words[-1].lstrip("/").split("@")[0].replace("/", ".")
    yield from _leaves(content, package)


def _leaves(node: Any, prefix: str) -> Iterator[str]:
    """The dotted keys of a node's values (a value may be a list or null), not of its dicts."""
    if not isinstance(node, dict) or not node:
        if prefix:
            yield prefix
        return
    for key, value in node.items():
        yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))


def _config_dirs(hydra: DictConfig | None) -> list[Path]:
    """The folders Hydra composed from (``--config-dir`` first), litlab's conf/ last."""
    dirs = []
    if hydra is not None:
        for source in hydra.runtime.get("config_sources", []):
            if source.get("schema") == "file":
                dirs.append(Path(source.path))
    return [*dirs, CONFIG_DIR]


# -- Hydra's record of the choices -------------------------------------------------------------
def _hydra_node(cfg: DictConfig) -> DictConfig | None:
    if "hydra" in cfg:
        return cfg.hydra
    return HydraConfig.get() if HydraConfig.initialized() else None


def _choices(cfg: DictConfig) -> dict[str, str]:
    hydra = _hydra_node(cfg)
    if hydra is None:
        return {}
    return {str(k): str(v) for k, v in hydra.runtime.choices.items()}


def _choose_option(cfg: DictConfig, group: str, option: str) -> None:
    """Swap ``cfg.<group>`` for litlab's option ``group/option``, and record the choice where
    the reports read it (Hydra's runtime choices)."""
    node = shipped_options(group)[option]
    node.pop(RECOMMENDED, None)
    with open_dict(cfg):
        cfg[group] = OmegaConf.create(node)
    nodes = [cfg.get("hydra"), HydraConfig.get() if HydraConfig.initialized() else None]
    for hydra in {id(n): n for n in nodes if n is not None}.values():
        with read_write(hydra), open_dict(hydra):
            hydra.runtime.choices[group] = option


__all__ = ["RECOMMENDED", "Applied", "apply_recommendations", "describe", "recommendations"]
