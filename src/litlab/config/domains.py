"""The domains of config values: what a key accepts, said in words for the error message.

A part's entry (its constructor's signature, ``litlab.config.entries``) states each argument's
domain with ``typing.Annotated``, e.g. ``dropout: Probability = 0.0``; the general keys' rules
(``litlab.config.checks``) use the same domains. Imports no torch.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any


class ArgumentError(ValueError):
    """A constructor argument outside its domain: ``argument`` names it, ``value`` is what was
    given (the builder reports it as ``<group>.<argument>=<value>``)."""

    def __init__(self, argument: str, value: object, message: str) -> None:
        self.argument, self.value = argument, value
        super().__init__(message)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite number: inf and nan (optimizer.lr=inf) are refused by every rule up front."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Domain:
    accepts: Callable[[Any], bool]
    expected: str
    # names the part of a refused value that is wrong: "[1] must be ..., got -1"
    culprit: Callable[[Any], str | None] = lambda value: None
    example: Any = None  # a value it accepts, for messages when a key has no default to show

    def check(self, name: str, value: Any) -> Any:
        """``value`` if the domain accepts it, else an :class:`ArgumentError` naming ``name``."""
        if not self.accepts(value):
            detail = self.culprit(value) or f" must be {self.expected}, got {value!r}"
            raise ArgumentError(name, value, f"{name}{detail}")
        return value


def int_at_least(low: int, also: tuple[Any, ...] = (), note: str = "") -> Domain:
    return Domain(
        lambda v: (is_int(v) and v >= low) or (v in also and not isinstance(v, bool)),
        f"an integer >= {low}{note}",
    )


def number_above(low: float, note: str = "") -> Domain:
    return Domain(lambda v: is_number(v) and v > low, f"a number > {low:g}{note}")


def number_at_least(low: float) -> Domain:
    return Domain(lambda v: is_number(v) and v >= low, f"a number >= {low:g}")


def number_between(low: float, high: float, text: str) -> Domain:
    return Domain(lambda v: is_number(v) and low <= v <= high, text)


def one_of(*values: Any) -> Domain:
    return Domain(lambda v: v in values, " or ".join(map(str, values)))


def each(domain: Domain, text: str) -> Domain:
    """A list whose every item is in ``domain``."""

    def accepts(value: Any) -> bool:
        items = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
        return items and all(domain.accepts(item) for item in value)

    def culprit(value: Any) -> str | None:
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            for index, item in enumerate(value):
                if not domain.accepts(item):
                    return f"[{index}] must be {domain.expected}, got {item!r}"
        return None

    return Domain(accepts, text, culprit, [domain.example] * 2 if domain.example else None)


def or_none(domain: Domain, meaning: str) -> Domain:
    """``domain``, or null with ``meaning``."""
    text = f"{domain.expected}, or null ({meaning})"
    return Domain(lambda v: v is None or domain.accepts(v), text, domain.culprit, domain.example)


def example(domain: Domain, value: Any) -> Domain:
    """``domain`` with an example value for its messages."""
    return replace(domain, example=value)


class StartingWeights:
    """Marks a key that only sets how the weights start, ``Annotated[type, Domain,
    STARTING_WEIGHTS]``: a run continued from its checkpoint loads its weights, so a resume
    does not compare it."""

    def __repr__(self) -> str:
        return "STARTING_WEIGHTS"


STARTING_WEIGHTS = StartingWeights()

POSITIVE_INT = int_at_least(1)
PROBABILITY = Domain(lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)")
OPEN_FRACTION = Domain(lambda v: is_number(v) and 0 < v < 1, "a number in (0, 1)")
BOOLEAN = Domain(lambda v: isinstance(v, bool), "true or false")
COUNT_OR_FRACTION = Domain(
    lambda v: (is_int(v) and v >= 1) or (is_number(v) and 0 < v < 1),
    "a count >= 1 or a fraction in (0, 1)",
)
MIN_OR_MAX = one_of("min", "max")
POSITIVE_INTS = each(POSITIVE_INT, "a list of integers >= 1")
IMAGE_SHAPE = Domain(
    lambda v: POSITIVE_INTS.accepts(v) and len(v) == 3,
    "[channels, height, width], integers >= 1",
)
SHAPE = Domain(
    lambda v: POSITIVE_INTS.accepts(v) and len(v) in (2, 3),
    "[steps, features] (sequences) or [channels, height, width] (images), integers >= 1",
)

# The annotations of part constructors: the type, and the domain the entry checks.
PositiveInt = Annotated[int, POSITIVE_INT]
PositiveInts = Annotated[Sequence[int], POSITIVE_INTS]
Probability = Annotated[float, PROBABILITY]
Flag = Annotated[bool, BOOLEAN]
ImageShape = Annotated[Sequence[int], IMAGE_SHAPE]
Shape = Annotated[Sequence[int], SHAPE]
CountOrFraction = Annotated[int | float, COUNT_OR_FRACTION]
