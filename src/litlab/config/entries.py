"""A part's entry: what a model, data set or loss states about itself, once, beside its code.

A part is the class that a config node's ``_target_`` names. Its constructor's signature is
its list of keys: each argument is a key of the node, and an annotation
``Annotated[type, Domain]`` (``litlab.config.domains``) says which values the key accepts::

    class TinyNet(nn.Module):
        @checked
        def __init__(self, input_shape: ImageShape, out_features: PositiveInt,
                     width: PositiveInt = 32, dropout: Probability = 0.0) -> None: ...

Before anything is built, :func:`check_node` reads the entry of each part the config chose:
an unknown key gets the closest known one, a value outside its domain one paragraph naming
``<group>.<key>`` and a value that works; a model's ``input_shape`` domain says which data it
reads (:func:`model_reads`). ``@checked`` applies the same domains when the class
is called directly (a notebook, a test). Checks that relate several arguments stay in the
constructor, raising :class:`ArgumentError`.

Reading an entry imports the part's module (litlab's models import torch, its data modules
Lightning too): the checks of the general keys (``litlab.config.checks``) come first and import
nothing heavy. This module imports no torch.
"""

import difflib
import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from litlab.config.domains import (
    BOOLEAN,
    IMAGE_SHAPE,
    SHAPE,
    ArgumentError,
    Domain,
    StartingWeights,
)
from litlab.errors import ConfigError

# The kinds of input a model reads (its ``reads``), named as data.input_shape gives them.
IMAGES, SEQUENCES, TABULAR = "images", "sequences", "tabular"
INPUT_WORDS = {
    IMAGES: "images ([channels, height, width])",
    SEQUENCES: "sequences ([steps, features])",
    TABULAR: "tabular (data.input_shape is null)",
}
ANY_INPUT = (IMAGES, SEQUENCES, TABULAR)  # a model that flattens whatever comes

# litlab's own keys under `model`, merged into every model option (conf/train.yaml): how the
# network is run, not what it computes, so not constructor arguments, and a resumed run may
# change them. model.compile runs it through torch.compile; model.channels_last stores
# convolution weights channels-last (NHWC).
MODEL_SWITCHES = {"compile": BOOLEAN, "channels_last": BOOLEAN}


def model_reads(cls: type) -> tuple[str, ...]:
    """The kinds of input a model reads: its ``reads``, else what its ``input_shape`` argument's
    domain admits (``ImageShape``: images; ``Shape``: images or sequences); a model without
    ``input_shape`` flattens whatever comes."""
    if hasattr(cls, "reads"):
        return tuple(cls.reads)
    shape = arguments(cls).get("input_shape")
    if shape is None:
        return ANY_INPUT
    return {IMAGE_SHAPE: (IMAGES,), SHAPE: (IMAGES, SEQUENCES)}.get(shape.domain, ANY_INPUT)


def input_kind(input_shape: Any) -> str:
    """The kind of input a data set's ``input_shape`` describes."""
    if input_shape is None:
        return TABULAR
    return IMAGES if len(input_shape) == 3 else SEQUENCES


@dataclass(frozen=True)
class Argument:
    name: str
    domain: Domain | None
    default: Any  # inspect.Parameter.empty: required
    starting_weights: bool = False  # only sets how the weights start (STARTING_WEIGHTS)

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def accepts(self, value: Any) -> bool:
        if value is None and self.default is None:
            return True  # null is the default: "not set"
        return self.domain is None or self.domain.accepts(value)


def part_class(target: str, key: str) -> type:
    """The class a ``_target_`` names, imported."""
    module, _, name = str(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(
            f"{key}._target_={target} cannot be imported ({type(err).__name__}: {err}). Check "
            "the name, and that the package that holds it is installed or on PYTHONPATH."
        ) from err


def arguments(cls: type) -> dict[str, Argument]:
    """The constructor arguments of ``cls``, following ``**kwargs`` passed on to its bases."""
    return dict(_arguments(cls)[0])


def starting_weight_keys(cls: type) -> frozenset[str]:
    """The keys of ``cls`` that only set how its weights start (marked STARTING_WEIGHTS)."""
    return frozenset(name for name, a in arguments(cls).items() if a.starting_weights)


def takes_any_key(cls: type) -> bool:
    """Whether the constructor chain ends in a ``**kwargs`` that no base names."""
    return _arguments(cls)[1]


@functools.cache
def _arguments(cls: type) -> tuple[tuple[tuple[str, Argument], ...], bool]:
    found: dict[str, Argument] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        parameters, passes_on = _parameters(init)
        for argument in parameters:
            found.setdefault(argument.name, argument)
        if not passes_on:
            return tuple(found.items()), False
    return tuple(found.items()), True


@functools.cache
def _parameters(function: Callable) -> tuple[tuple[Argument, ...], bool]:
    """The named parameters of an ``__init__`` (without ``self``) and whether it has
    ``**kwargs``."""
    function = inspect.unwrap(function)  # @checked: the annotations' own module resolves them
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature
        return (), True
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no domains, still the keys
        hints = {}
    named, passes_on = [], False
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            passes_on = True
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            hint = hints.get(parameter.name)
            domain, starting = _domain(hint), _marked(hint, StartingWeights)
            named.append(Argument(parameter.name, domain, parameter.default, starting))
    return tuple(named), passes_on


def _domain(hint: Any) -> Domain | None:
    if typing.get_origin(hint) is typing.Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Domain)), None)
    return None


def _marked(hint: Any, marker: type) -> bool:
    is_annotated = typing.get_origin(hint) is typing.Annotated
    return is_annotated and any(isinstance(m, marker) for m in hint.__metadata__)


def checked(init: Callable) -> Callable:
    """Check an ``__init__``'s arguments against their annotated domains before it runs: a
    part used directly refuses a bad value as the config check does, naming the argument."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        given = signature.bind(self, *args, **kwargs).arguments
        for argument in _parameters(init)[0]:
            if argument.name in given and not argument.accepts(given[argument.name]):
                argument.domain.check(argument.name, given[argument.name])
        init(self, *args, **kwargs)

    return wrapper


def check_node(
    node: Mapping[str, Any],
    key: str,
    ignore: tuple[str, ...] = (),
    domains: Mapping[str, Domain] | None = None,
    unresolved: Mapping[str, str] | None = None,
    later: tuple[str, ...] = (),
) -> type:
    """Check a config node (plain values) against the entry of the class its ``_target_``
    names; returns that class. ``ignore``: litlab's own keys of the group, not constructor
    arguments (``model.compile``); ``domains``: those of a class whose code cannot state them
    (torch's losses: ``litlab.config.losses``); ``unresolved``: keys left out of ``node``
    because their interpolation failed, with why; ``later``: keys whose values are checked in
    a later call (they read another part's keys, checked in between)."""
    cls = part_class(node["_target_"], key)
    known = {
        name: replace(argument, domain=(domains or {}).get(name, argument.domain))
        for name, argument in arguments(cls).items()
    }
    given = {k: v for k, v in node.items() if not k.startswith("_") and k not in ignore}
    for name, value in given.items():
        if name not in known:
            if takes_any_key(cls):
                continue
            raise ConfigError(_unknown_key(key, name, known, node["_target_"]))
        argument = known[name]
        if name not in later and not argument.accepts(value):
            culprit = argument.domain.culprit(value)
            reason = f"{name}{culprit}" if culprit else f"it must be {argument.domain.expected}"
            example = _example(key, argument)
            raise ConfigError(
                f"{key}.{name}={value!r} is invalid: {reason}"
                f"{f', e.g. {example}' if example else ''}."
            )
    missing = [a.name for a in known.values() if a.required and a.name not in given]
    failed = [name for name in missing if name in (unresolved or {})]
    if failed:
        raise ConfigError(f"{key}.{failed[0]} could not be worked out: {unresolved[failed[0]]}.")
    if missing:
        raise ConfigError(
            f"{key}.{missing[0]} is required by {node['_target_']} and was not given: add it "
            f"to the config or the command, e.g. +{key}.{missing[0]}=<value>."
        )
    return cls


def _unknown_key(key: str, name: str, known: Mapping[str, Argument], target: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"Did you mean {key}.{close[0]}? " if close else ""
    return (
        f"{key}.{name} is not a key of {target}. {hint}Its keys: {', '.join(known)} (print "
        f"them with `python train.py --cfg job --package {key}`)."
    )


def _example(key: str, argument: Argument) -> str:
    """``key.name=value`` with the argument's default, else its domain's example."""
    value = argument.default
    if argument.required or value is None or not argument.domain.accepts(value):
        value = argument.domain.example
    if value is None:
        return ""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "[" + ",".join(map(str, value)) + "]"
    else:
        text = str(value)
    return f"{key}.{argument.name}={text}"


__all__ = [
    "ANY_INPUT",
    "IMAGES",
    "INPUT_WORDS",
    "SEQUENCES",
    "TABULAR",
    "MODEL_SWITCHES",
    "ArgumentError",
    "arguments",
    "check_node",
    "checked",
    "input_kind",
    "part_class",
    "starting_weight_keys",
]
