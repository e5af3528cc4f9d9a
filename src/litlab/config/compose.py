"""Composing conf/ as the command line does, and reading what Hydra chose."""

import json
import math
import os
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.config.folder_facts import image_folder_fact
from litlab.config.recommended import apply_recommendations
from litlab.config.table_facts import table_fact


def _outputs(task: str, num_classes: int | None) -> int:
    """data.num_outputs: one logit per class for multiclass, one value otherwise."""
    if task == "multiclass" and num_classes is None:
        raise ValueError("multiclass data states data.num_classes, e.g. data.num_classes=3")
    return num_classes if task == "multiclass" else 1


def _size(input_shape: list[int] | None) -> int:
    """data.num_features of an image or a sequence: its flat size. Tabular data has no shape
    and states its number of features instead."""
    if input_shape is None:
        raise ValueError(
            "tabular data (data.input_shape is null) states data.num_features, e.g. "
            "data.num_features=13"
        )
    return math.prod(input_shape)


# A Vision Transformer reads about this many patches of an image: 4x4 of 7x7 pixels on MNIST,
# where 4x4-pixel patches (49 tokens) cost three times as much for 1.5 points less (5 epochs).
PATCHES = 16


def _patch_size(input_shape: list[int] | None) -> int:
    """model.patch_size of the Transformer: the smallest side that divides an image's height
    and width into at most PATCHES patches (28x28: 7; 8x8: 2); 1 for sequences."""
    if input_shape is None or len(input_shape) != 3:
        return 1
    height, width = input_shape[1:]
    fits = [p for p in range(1, min(height, width) + 1) if not height % p and not width % p]
    return next((p for p in fits if (height // p) * (width // p) <= PATCHES), fits[-1])


# conf/train.yaml derives data facts with these: OmegaConf has no arithmetic. Registered when
# this module is imported, before any config is composed (the entry points, DDP workers and
# submitit's jobs all import it first).
for _name, _resolver in (("outputs", _outputs), ("size", _size), ("patch_size", _patch_size)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)
# A user's folder or table states its facts (conf/data/image_folder.yaml, table.yaml): read
# at every access of such a key; litlab.config.folder_facts keeps each scan while the files stay.
for _name, _resolver in (("image_folder", image_folder_fact), ("table", table_fact)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)


def project_environment() -> dict[str, str]:
    """What conf/ reads from the environment: the project root, for paths.root_dir."""
    return {"LITLAB_ROOT": str(PROJECT_ROOT)}


def compose_config(
    overrides: list[str], output_dir: str | Path, config_name: str = "train"
) -> DictConfig:
    """Compose conf/<config_name> as the command line would, with the run folder at
    ``output_dir``: for tests, notebooks and scripts that call ``train(cfg)`` directly."""
    cfg = compose_overrides(overrides, config_name)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def compose_overrides(overrides: list[str], config_name: str, recommend: bool = True) -> DictConfig:
    """conf/<config_name> with ``overrides``, Hydra's own node included (not yet a run), the
    parts' recommendations applied (``recommend=False``: left to the caller, who logs them)."""
    for name, value in project_environment().items():
        os.environ.setdefault(name, value)
    theirs = GlobalHydra.instance().hydra  # a notebook's own Hydra, initialised before: kept
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            overrides = hydra_spelling(overrides)
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:  # the context restored its own copy of the singleton: set it on the current one
        GlobalHydra.instance().hydra = theirs
    if recommend:
        apply_recommendations(cfg)
    return cfg


# Config groups inside a group's option, chosen by their dotted key too:
# callbacks.weight_averaging=ema is Hydra's callbacks/weight_averaging=ema. Each is off with its
# option "none": Hydra refuses a group override to null, which a sweep (ema,null) would need.
NESTED_GROUPS = ("callbacks.weight_averaging",)


def hydra_spelling(overrides: list[str]) -> list[str]:
    """``overrides`` with a nested group's choice by its dotted key in Hydra's spelling, null
    as its option none (a key below it, callbacks.weight_averaging.decay=0.99, stays)."""
    spelled = []
    for override in overrides:
        key, equals, value = override.partition("=")
        bare = key.lstrip("+~")
        if equals and bare in NESTED_GROUPS and not value.lstrip().startswith("{"):
            options = ["none" if item.strip() == "null" else item for item in value.split(",")]
            override = f"{key[: len(key) - len(bare)]}{bare.replace('.', '/')}={','.join(options)}"
        spelled.append(override)
    return spelled


def hydra_choices() -> dict[str, str]:
    """Chosen config group options ({"model": "cnn", ...}) when running under Hydra."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def quoted(text: str) -> str:
    """A value as a quoted Hydra override value (a path may hold spaces or '='): Hydra
    unescapes a backslash before a quote only, and ``${`` would be an interpolation."""
    return "'" + text.replace("'", "\\'").replace("${", "\\${") + "'"


def escaped(path: Path) -> str:
    """A path as a config value: a ``${`` in it is text, not an interpolation."""
    return str(path).replace("${", "\\${")


def plain_config(cfg: DictConfig) -> dict:
    """The resolved config as plain dicts and lists, without Hydra's own node: what
    config.yaml and every checkpoint store."""
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys; a list or any other value as its text."""
    if not isinstance(config, dict):
        return {prefix: json.dumps(config) if isinstance(config, list) else str(config)}
    flat: dict[str, str] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return {key.rstrip("."): value for key, value in flat.items()}


# Keys that say where files lie on this machine, not how a run was made.
MACHINE_KEYS = ("paths.", "hydra.", "ckpt_path", "resume")


def comparable_config(config: dict[str, Any]) -> dict[str, str]:
    """A resolved config as dotted keys with text values (``flatten``), without what says where
    files lie: the machine keys and any value inside the run's own folder or its log folder
    (checkpoint and logger folders, the tracking database)."""
    paths = config.get("paths") or {}
    own = [str(paths[key]) for key in ("output_dir", "log_dir") if paths.get(key)]
    return {
        key: value
        for key, value in flatten(config).items()
        if not key.startswith(MACHINE_KEYS) and not any(folder in value for folder in own)
    }
