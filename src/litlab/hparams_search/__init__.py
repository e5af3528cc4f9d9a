"""Hyperparameter search with Optuna: the search space in Hydra's sweep syntax
(``search_space``), the study (``study``), the Hydra sweeper's body (``optuna_sweeper``) and a
job's side of its trial (``trial``). The plugin Hydra finds is
``hydra_plugins.litlab_optuna_sweeper``."""
