"""Hydra's sweep syntax as Optuna distributions: ``interval(a, b)``, ``tag(log, interval(a, b))``,
``tag(int, interval(a, b))`` (whole numbers; ``tag(log, int, ...)`` both), ``choice(a, b, ...)``
(also ``a,b``), ``range(start, stop[, step])`` and ``shuffle(...)``, as in
``hydra.sweeper.params`` or on the command line. A plain value is a fixed parameter: every trial
gets it. Imports Optuna inside functions only (the ``optuna`` extra)."""

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer

from litlab.errors import ConfigError

SYNTAX = (
    "interval(low, high), tag(log, interval(low, high)), tag(int, interval(low, high)), "
    "choice(a, b, ...) or range(a, b)"
)


def parse_search(params: dict[str, Any], arguments: list[str]) -> tuple[dict, dict[str, str]]:
    """(distributions, fixed): each searched key's Optuna distribution and each fixed key's
    value as the override text. ``arguments`` (the command line) win over ``params``; a key
    fixed on the command line is not searched."""
    lines = [f"{key}={_text(key, value)}" for key, value in params.items()] + list(arguments)
    parsed = OverridesParser.create().parse_overrides(lines)
    distributions: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in parsed:
        key = override.get_key_element()
        distributions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            distributions[key] = distribution(override)
        else:
            fixed[key] = override.get_value_element_as_str()
    if not distributions:
        raise ConfigError(
            "The search has no parameter to search: hydra.sweeper.params gives none and the "
            f"command line none either. Give each one a search space: {SYNTAX}, e.g. "
            "optimizer.lr='tag(log, interval(1e-4, 1e-1))' or model.dropout='interval(0, 0.5)'."
        )
    return distributions, fixed


def _text(key: str, value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(
            f"hydra.sweeper.params.{key} has no search space (it is {value!r}). Give it one: "
            f"{SYNTAX}, e.g. {key}: interval(0.0, 0.5); or remove the key."
        )
    return str(value)


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key, sweep = override.get_key_element(), override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and sweep.shuffle):
        if "log" in sweep.tags:
            raise ConfigError(
                f"{key}: tag(log, ...) applies to an interval, not to a choice: write "
                f"tag(log, interval(low, high)) or drop the tag."
            )
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        return _range_distribution(key, sweep.start, sweep.stop, sweep.step)
    low, high, log = sweep.start, sweep.end, "log" in sweep.tags
    if not low < high or (log and low <= 0):
        need = "0 < low < high (a log scale)" if log else "low < high"
        raise ConfigError(
            f"{key}: interval({low}, {high}) is empty or invalid: it needs {need}, e.g. "
            f"{key}='tag(log, interval(1e-4, 1e-1))'."
        )
    if "int" in sweep.tags:  # Hydra reads every interval's bounds as floats
        if low != int(low) or high != int(high):
            raise ConfigError(
                f"{key}: tag(int, interval({low}, {high})) needs whole-number bounds, e.g. "
                f"{key}='tag(int, interval(16, 512))'."
            )
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _range_distribution(key: str, start: float, stop: float, step: float) -> Any:
    """range(start, stop, step) as Hydra's basic sweeper reads it: stop is left out. Hydra's
    Optuna sweeper included it; litlab keeps one meaning for the syntax."""
    from optuna.distributions import FloatDistribution, IntDistribution

    count = int((stop - start - 1e-12 * step) // step) + 1 if step > 0 else 0
    if count < 1:
        raise ConfigError(
            f"{key}: range({start}, {stop}, {step}) holds no value (it counts up by a step > 0 "
            f"and leaves the stop out, as in Python): e.g. {key}='range(2, 5)' for 2, 3 and 4."
        )
    last = start + (count - 1) * step
    if all(isinstance(value, int) for value in (start, stop, step)):
        return IntDistribution(int(start), int(last), step=int(step))
    return FloatDistribution(float(start), float(last), step=float(step))


def example_values(space: dict[str, Any]) -> dict[str, Any]:
    """A value of each distribution (its first choice or its low end), to compose a config with
    before any trial is asked."""
    return {
        key: dist.choices[0] if hasattr(dist, "choices") else dist.low
        for key, dist in space.items()
    }


def trial_overrides(params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    """The command-line overrides of one trial: its sampled values, then the fixed ones."""
    sampled = [f"{key}={_override_value(value)}" for key, value in params.items()]
    return sampled + [f"{key}={value}" for key, value in fixed.items()]


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
