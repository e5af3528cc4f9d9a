"""Argument checks of the model constructors: each model checks its own keys, so a bad size
fails when the model is built, naming the argument (``model.<argument>`` in the config)."""

from collections.abc import Sequence


class ArgumentError(ValueError):
    """A constructor argument outside its domain: ``argument`` names it, ``value`` is what was
    given (the builder reports it as ``model.<argument>=<value>``)."""

    def __init__(self, argument: str, value: object, message: str) -> None:
        self.argument, self.value = argument, value
        super().__init__(message)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def require_positive_int(name: str, value: object) -> int:
    if not _positive_int(value):
        raise ArgumentError(name, value, f"{name} must be a positive integer, got {value!r}")
    return value


def require_positive_ints(name: str, values: Sequence[int]) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentError(
            name, values, f"{name} must be a list of positive integers, got {values!r}"
        )
    for index, value in enumerate(values):
        if not _positive_int(value):
            raise ArgumentError(
                name, list(values), f"{name}[{index}] must be a positive integer, got {value!r}"
            )
    return list(values)


def require_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ArgumentError(name, value, f"{name} must be a probability in [0, 1), got {value!r}")
    return float(value)


def require_one_of(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ArgumentError(
            name, value, f"{name} must be one of {', '.join(choices)}, got {value!r}"
        )
    return value


def require_shaped_input(input_shape: Sequence[int] | None) -> list[int]:
    """``[steps, features]`` (sequences) or ``[channels, height, width]`` (images)."""
    if input_shape is None or len(input_shape) not in (2, 3):
        raise ArgumentError(
            "input_shape",
            input_shape,
            "input_shape must be [steps, features] (sequences) or [channels, height, width] "
            f"(images), got {input_shape!r}",
        )
    return require_positive_ints("input_shape", input_shape)


def sequence_shape(input_shape: Sequence[int] | None) -> tuple[int, int]:
    """``(steps, features)`` of a sequence model's input: ``[steps, features]`` for sequence
    data, or ``[channels, height, width]`` for images read one row per step."""
    shape = require_shaped_input(input_shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    channels, height, width = shape
    return height, channels * width
