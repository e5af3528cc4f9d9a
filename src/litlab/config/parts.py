"""The parts a config chose (data set, model, loss), each checked against its entry: whether
they fit together (the model reads the data's kind of input, the loss serves its kind of
problem), then each one's own keys. Reading an entry imports the part's module (torch, and
Lightning for a data module), so these run after the general keys' checks."""

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from litlab import CONFIG_DIR
from litlab.config.catalog import data_sets, shipped_options
from litlab.config.entries import (
    ANY_INPUT,
    INPUT_WORDS,
    MODEL_SWITCHES,
    check_node,
    input_kind,
    model_reads,
    part_class,
)
from litlab.config.losses import loss_entry, loss_options
from litlab.errors import ConfigError, DataError
from litlab.library_errors import resolver_refusal
from litlab.library_internals import child_node, is_interpolation
from litlab.metric_names import TASKS


def part_checks(cfg: DictConfig, choices: dict[str, str]) -> Iterator[Callable[[], None]]:
    """The data set, model and loss the config chose, each against its entry: whether they fit
    together, then each one's keys, cheapest first (torch's losses: a table; a model: torch; a
    data module: Lightning too). A model's keys that read the data's (``input_shape``) are
    checked after the data set's, so that a bad data key is named where it was given."""
    try:
        (data, data_failed), (model, model_failed), (loss, _) = (
            _resolved(cfg, group) for group in ("data", "model", "loss")
        )
    except DataError as err:  # a user's folder or table the parts' facts are read from
        yield partial(_raise, err)
        return
    switches = tuple(MODEL_SWITCHES)
    if loss is not None and data is not None:
        yield lambda: _check_loss_fits_task(loss, data.get("task"), choices)
    fits: list[bool] = []  # whether the model fits the data: its data keys are checked then
    if model is not None:
        from_data = tuple(key for key in model if _derived(cfg.model, key))

        def check_model() -> None:
            if data is not None:
                _check_model_fits_data(model, data, choices)
            fits.append(True)
            check_node(model, "model", switches, unresolved=model_failed, later=from_data)

        yield check_model
    if data is not None:
        yield lambda: check_node(data, "data", unresolved=data_failed)
    if model is not None:
        yield lambda: fits and check_node(model, "model", switches, unresolved=model_failed)
    if loss is not None:
        yield lambda: check_node(loss, "loss", domains=loss_entry(loss["_target_"]).domains)


def _raise(err: Exception) -> None:
    raise err


def _resolved(cfg: DictConfig, group: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """A part's node as plain values, the keys given as values first and those interpolated
    from other keys after, so that a bad value is named where it was given; and apart, the keys
    whose interpolation fails, with why (the key they read is checked and named first). None
    when the config has no such part."""
    node = cfg.get(group)
    if not OmegaConf.is_dict(node) or "_target_" not in node:
        return None, {}
    keys = sorted(node, key=lambda key: _derived(node, key))  # stable: given, then derived
    values, failed = {}, {}
    for key in keys:
        try:
            value = node[key]
            values[key] = (
                OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            )
        except OmegaConfBaseException as err:
            own = resolver_refusal(err)  # a user's folder or table, read by a resolver
            if own is not None:
                raise own from err
            failed[key] = str(err).splitlines()[0].split("resolving interpolation: ")[-1]
    return values, failed


def _derived(node: DictConfig, key: str) -> bool:
    """Whether a key's value is, or holds, an interpolation of other keys."""
    child = child_node(node, key)
    if OmegaConf.is_config(child) and not is_interpolation(child):
        return "${" in str(OmegaConf.to_container(child, resolve=False))
    return is_interpolation(child)


def _check_loss_fits_task(loss_node: dict, task: Any, choices: dict[str, str]) -> None:
    target = loss_node["_target_"]
    fits = loss_entry(target).task
    if fits is None or task not in TASKS or fits == task:
        return
    loss = choices.get("loss", target)
    data = choices.get("data", "this data set")
    fitting = _either(loss_options(CONFIG_DIR).get(task, [])) or f"a {task} loss"
    raise ConfigError(
        f"loss={loss} is a {fits} loss, but data={data} is a {task} task (data.task). "
        f"Use {fitting} with this data, or pick {fits} data."
    )


def _check_model_fits_data(model: dict, data: dict, choices: dict[str, str]) -> None:
    reads = model_reads(part_class(model["_target_"], "model"))
    kind = input_kind(data.get("input_shape"))
    if kind in reads:
        return
    name = choices.get("model", model["_target_"])
    data_name = choices.get("data", "this data set")
    fitting = _either([f"data={option}" for wanted in reads for option in _data_options(wanted)])
    any_model = _either([f"model={option}" for option in _models_reading_anything()])
    raise ConfigError(
        f"model={name} reads {' or '.join(INPUT_WORDS[k] for k in reads)} (model.input_shape "
        f"reads data.input_shape), but data={data_name} is {INPUT_WORDS[kind]}. Use "
        f"{fitting or 'data of that kind'} with it, or a model that reads any data: {any_model}."
    )


def compatible_pairs() -> list[tuple[str, str]]:
    """Every (data, model) pair of shipped options where the model reads the data's kind of
    input: what `python train.py data=X model=Y` trains (the loss follows data.task)."""
    models = {
        name: model_reads(part_class(node["_target_"], "model"))
        for name, node in shipped_options("model").items()
    }
    return [
        (data, model)
        for data, node in data_sets().items()
        for model, reads in models.items()
        if input_kind(node.get("input_shape")) in reads
    ]


def _either(choices: list[str]) -> str:
    """ "a, b or c"."""
    return " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)


def _data_options(kind: str) -> list[str]:
    """The shipped data options of one kind of input, by the length of their input_shape."""
    return [
        name for name, node in data_sets().items() if input_kind(node.get("input_shape")) == kind
    ]


def _models_reading_anything() -> list[str]:
    return [
        name
        for name, node in shipped_options("model").items()
        if "_target_" in node
        and set(model_reads(part_class(node["_target_"], "model"))) == set(ANY_INPUT)
    ]
