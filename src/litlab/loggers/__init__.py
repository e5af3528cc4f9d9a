"""Experiment trackers (``logger=mlflow``, ``logger=wandb``): Lightning's loggers for MLflow and
Weights & Biases, run the way a run folder is: one tracked run per run folder (per sweep job),
the composed config, tags and notes, the folder's files as artifacts, the run's true end status
and, under ``resume=auto``, the same tracked run continued.

``run_facts`` (what a tracker records about a run) imports nothing heavy; ``tracker`` holds the
lifecycle every tracker shares; ``mlflow_logger`` and ``wandb_logger`` import their library.
"""
