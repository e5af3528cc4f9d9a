"""Hydra's sweep syntax read as Optuna distributions (litlab.hparams_search.search_space)."""

import pytest

optuna = pytest.importorskip("optuna", reason='needs pip install -e ".[optuna]"')

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from litlab.errors import ConfigError  # noqa: E402
from litlab.hparams_search.search_space import parse_search, trial_overrides  # noqa: E402


def test_each_sweep_form_becomes_its_distribution():
    space, fixed = parse_search(
        {
            "optimizer.lr": "tag(log, interval(0.0001, 0.1))",
            "model.dropout": "interval(0.0, 0.5)",
            "data.batch_size": "choice(32, 64, 128)",
            "trainer.max_epochs": "range(2, 5)",
            "search.width": "tag(log, int, interval(16, 512))",
            "search.depth": "tag(int, interval(1, 4))",
            "optimizer": "adam,sgd",
            "seed": "7",
        },
        [],
    )
    assert space["optimizer.lr"] == FloatDistribution(0.0001, 0.1, log=True)
    assert space["model.dropout"] == FloatDistribution(0.0, 0.5)
    assert space["data.batch_size"] == CategoricalDistribution([32, 64, 128])
    # range leaves its stop out, as Hydra's basic sweeper and Python do
    assert space["trainer.max_epochs"] == IntDistribution(2, 4)
    assert space["search.width"] == IntDistribution(16, 512, log=True)
    assert space["search.depth"] == IntDistribution(1, 4)
    assert space["optimizer"] == CategoricalDistribution(["adam", "sgd"])
    assert fixed == {"seed": "7"}


def test_the_command_line_wins_and_a_fixed_value_is_not_searched():
    space, fixed = parse_search(
        {"optimizer.lr": "interval(0.001, 0.1)", "model.dropout": "interval(0, 0.5)"},
        ["optimizer.lr=0.003", "data.batch_size=choice(64,128)"],
    )
    assert set(space) == {"model.dropout", "data.batch_size"}
    assert fixed == {"optimizer.lr": "0.003"}


def test_a_float_range_keeps_its_step():
    space, _ = parse_search({"model.dropout": "range(0.0, 0.5, 0.1)"}, [])
    assert space["model.dropout"] == FloatDistribution(0.0, 0.4, step=0.1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "The search has no parameter to search"),
        ({"optimizer.lr": "0.01"}, "The search has no parameter to search"),
        ({"optimizer.lr": None}, "hydra.sweeper.params.optimizer.lr has no search space"),
        ({"optimizer.lr": "tag(log, choice(0.1, 0.01))"}, "tag(log, ...) applies to an interval"),
        ({"optimizer.lr": "tag(log, interval(0, 0.1))"}, "needs 0 < low < high"),
        ({"model.dropout": "interval(0.5, 0.1)"}, "interval(0.5, 0.1) is empty or invalid"),
        ({"trainer.max_epochs": "range(5, 5)"}, "range(5, 5, 1) holds no value"),
        ({"trainer.max_epochs": "range(5, 1, -1)"}, "it counts up by a step > 0"),
        ({"search.width": "tag(int, interval(1.5, 4))"}, "needs whole-number bounds"),
    ],
)
def test_a_parameter_without_a_search_space_is_named(params, message):
    with pytest.raises(ConfigError) as caught:
        parse_search(params, [])
    assert message in str(caught.value)


def test_a_trials_overrides_are_its_values_then_the_fixed_ones():
    overrides = trial_overrides(
        {"optimizer.lr": 0.0003, "optimizer": "sgd", "model.bias": True, "x": None},
        {"seed": "7"},
    )
    assert overrides == [
        "optimizer.lr=0.0003",
        "optimizer=sgd",
        "model.bias=true",
        "x=null",
        "seed=7",
    ]
