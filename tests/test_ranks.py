"""litlab.ranks: rank zero, before a Trainer exists, from the launcher's environment."""

import pytest

from litlab.ranks import RANK_VARIABLES, is_rank_zero, process_rank


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch):
    for variable in RANK_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_a_plain_process_is_rank_zero():
    assert process_rank() == 0 and is_rank_zero()


@pytest.mark.parametrize(
    ("environment", "rank"),
    [
        ({"LOCAL_RANK": "1"}, 1),  # a DDP worker Lightning started
        ({"SLURM_PROCID": "3"}, 3),  # another task of a SLURM job
        ({"RANK": "0", "SLURM_PROCID": "2"}, 0),  # torchrun's RANK comes first, as in Lightning
        ({"RANK": "not a number", "LOCAL_RANK": "2"}, 2),
    ],
)
def test_the_launchers_variables_name_the_rank(monkeypatch, environment, rank):
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert process_rank() == rank
    assert is_rank_zero() is (rank == 0)
