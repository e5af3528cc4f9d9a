"""Which process is rank zero, before a Lightning Trainer exists.

Inside training the Trainer knows (``trainer.is_global_zero``); before it, and in processes
that never build one (the command line, Hydra's sweep callback), the launcher's environment
tells. The variables are those Lightning itself reads (``rank_zero_only.rank``), in its order:
torchrun and Lightning's own launcher set RANK / LOCAL_RANK, SLURM sets SLURM_PROCID.
"""

import os

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank() -> int:
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def is_rank_zero() -> bool:
    return process_rank() == 0


def is_launched_worker() -> bool:
    """A process that Lightning's own DDP launcher started for a local rank > 0, with the
    command line that rank zero prepared (it sets LOCAL_RANK only in those). The tasks that
    srun starts each prepare their own, as every task reads the same runs."""
    value = os.environ.get("LOCAL_RANK", "0").strip()
    return value.isdigit() and int(value) != 0
