"""``logger=mlflow``: one MLflow run per run folder, in a SQLite database by default."""

import importlib.util
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from litlab.console import route_library_loggers
from litlab.errors import ConfigError, missing_extra
from litlab.loggers.run_facts import TrackedRun
from litlab.loggers.tracker import RunEnd, Tracker
from litlab.ranks import is_rank_zero
from litlab.run_folder import BEST_CHECKPOINT, CHECKPOINTS, METRICS, PLOTS, read_json_object

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"
STATUSES = {RunEnd.FINISHED: "FINISHED", RunEnd.FAILED: "FAILED", RunEnd.KILLED: "KILLED"}
HEALTH_TIMEOUT_S = 5


class MlflowLogger(Tracker, MLFlowLogger):
    """Lightning's MLFlowLogger with the run's life around it (``litlab.loggers.tracker``).

    Args:
        run: the run folder's facts (given by litlab's build, not by the config).
        tracking_uri: ``sqlite:///<file>`` (created with its tables on first use; artifacts in
            ``mlartifacts/`` beside it) or ``http(s)://host:port`` of an ``mlflow server``.
        experiment_name: the MLflow experiment that holds the run (default: task_name).
        log_model: also keep the best checkpoint as an artifact.
        synchronous: log in the training loop (about 70 ms per epoch into SQLite on the
            development VM); false hands it to MLflow's background thread (4 ms in the loop),
            which on its 2 cores took as long overall, as the thread competes with training
            (scripts/bench_loggers.py); with cores to spare it saves the difference.
    """

    key = "mlflow"

    def __init__(
        self,
        run: TrackedRun,
        tracking_uri: str,
        experiment_name: str = "train",
        log_model: bool = False,
        synchronous: bool = True,
    ) -> None:
        if importlib.util.find_spec("mlflow") is None:
            raise missing_extra("logger=mlflow", "mlflow", "mlflow")
        if is_rank_zero():  # the other ranks of a DDP run never reach the database
            check_tracking_uri(tracking_uri)
        import mlflow  # noqa: F401 - it gives its logger a console handler: routed now

        route_library_loggers()
        # it prints each ended run's page with emoji; litlab names the page once, at the start
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.run = run
        self.tracking_uri, self.experiment_name = tracking_uri, experiment_name
        self.log_best_checkpoint = bool(log_model)
        self.logged_up_to = {}
        # MLflow's client creates a new database's tables as it is made: one job at a time
        with database_lock(tracking_uri):
            self.continued_id = self._run_to_continue() if is_rank_zero() else None
            super().__init__(
                experiment_name=experiment_name,
                run_name=run.name,
                tracking_uri=tracking_uri,
                artifact_location=artifact_location(tracking_uri),
                run_id=self.continued_id,
                synchronous=synchronous,
            )

    def _run_to_continue(self) -> str | None:
        previous = self.run.previous_id(self.key)
        if previous is None:
            return None
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            found = MlflowClient(self.tracking_uri).get_run(previous)
        except MlflowException:
            found = None
        if found is None or found.info.lifecycle_stage != "active":
            log.warning(
                "The MLflow run %s that %s logged to is not in %s (or was deleted): a new "
                "MLflow run continues it.",
                previous,
                self.run.folder,
                self.tracking_uri,
            )
            return None
        return previous

    # -- the run's life ------------------------------------------------------------------
    def start(self) -> None:
        continued = self.continued_id is not None
        with database_lock(self.tracking_uri):
            if not continued:  # made here: Lightning would warn that it is missing
                self._make_experiment()
            client, run_id = self.experiment, self.run_id
        self.has_run = True
        params = self.run.flat_config()
        if continued:
            recorded = client.get_run(run_id).data
            params = {key: value for key, value in params.items() if key not in recorded.params}
            self.logged_up_to = {
                key: max(point.step for point in client.get_metric_history(run_id, key))
                for key in recorded.metrics
            }
            client.update_run(run_id, status="RUNNING")
        _log_in_batches(client, run_id, params, self._run_tags())
        self.run.remember(self.key, run_id)
        log.info("MLflow: %s %s", "continuing" if continued else "run", self._where(run_id))

    def _make_experiment(self) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment_name)
        if found is None:
            client.create_experiment(self.experiment_name, artifact_location(self.tracking_uri))
        elif found.lifecycle_stage != "active":
            raise ConfigError(
                f"The MLflow experiment {self.experiment_name!r} in {self.tracking_uri} was "
                "deleted. Restore it (mlflow experiments restore --experiment-id "
                f"{found.experiment_id}, or in the UI), remove it for good (mlflow gc), or log "
                "to another one: logger.mlflow.experiment_name=<name>."
            )

    def _where(self, run_id: str) -> str:
        """The run's page on a server; for a database, the command that shows it."""
        if self.tracking_uri.startswith(SQLITE):
            return (
                f"{run_id} in experiment {self.experiment_name} (see it: mlflow ui "
                f"--backend-store-uri {self.tracking_uri})"
            )
        page = f"#/experiments/{self.experiment_id}/runs/{run_id}"
        return f"{run_id} at {self.tracking_uri.rstrip('/')}/{page}"

    def end(self, how: RunEnd) -> None:
        """Keep the folder's files and the final metrics, then the status, whatever failed."""
        if not self.has_run:
            return
        import mlflow

        client, run_id = self.experiment, self.run_id
        try:
            mlflow.flush_async_logging()  # synchronous=false: what the thread still holds
            for path in self.artifacts():
                folder = PLOTS if path.parent.name == PLOTS else None
                client.log_artifact(run_id, str(path), folder)
            best = self.run.folder / CHECKPOINTS / BEST_CHECKPOINT
            if self.log_best_checkpoint and best.is_file():
                client.log_artifact(run_id, str(best), CHECKPOINTS)
            self._log_final_metrics(client, run_id)
        finally:
            client.set_terminated(run_id, STATUSES[how])

    def _run_tags(self) -> dict[str, str]:
        facts = self.run.facts()
        tags = {f"litlab.{key}": value for key, value in facts.items()}
        tags.update({tag: "true" for tag in self.run.tags})
        if "git_commit" in facts:
            tags["mlflow.source.git.commit"] = facts["git_commit"]  # shown by MLflow's UI
        if self.run.notes:
            tags["mlflow.note.content"] = self.run.notes  # the run's description in the UI
        return tags

    def _log_final_metrics(self, client: Any, run_id: str) -> None:
        """metrics.json's numbers that Lightning did not log (model/params)."""
        from mlflow.entities import Metric

        try:
            final = read_json_object(self.run.folder / METRICS)
        except (OSError, ValueError):
            return
        logged = client.get_run(run_id).data.metrics
        named = {metric_name(key): value for key, value in final.items()}  # as Lightning logs
        missing = [
            Metric(key, float(value), int(time.time() * 1000), 0)
            for key, value in named.items()
            if key not in logged
        ]
        if missing:
            client.log_batch(run_id, metrics=missing)

    # -- what Lightning calls ------------------------------------------------------------
    def log_hyperparams(self, params: Any) -> None:
        """The composed config is logged by ``start`` with dotted keys; Lightning's call would
        add the LightningModule's arguments (the same config, nested and cut at 250 chars)."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        fresh = self.not_logged_yet({metric_name(k): v for k, v in metrics.items()}, step)
        if fresh:
            super().log_metrics(fresh, step)

    def finalize(self, status: str = "success") -> None:
        """Lightning calls this after every fit and test: not the end of the run (``end``)."""


def metric_name(name: str) -> str:
    """A metric's name as Lightning's MLflow logger keeps it (MLflow allows only these)."""
    return re.sub("[^a-zA-Z0-9_/. -]+", "", name)


def check_tracking_uri(uri: Any) -> None:
    """Refuse a database that cannot be written or a server that does not answer, before
    anything trains (MLflow itself retries an unreachable server for minutes)."""
    if not isinstance(uri, str) or not uri:
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri!r} is not a tracking URI. Give sqlite:///<file> "
            "or http://<host>:<port> of an `mlflow server`."
        )
    if uri.startswith(SQLITE):
        _check_database_path(uri, Path(uri[len(SQLITE) :]))
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)


def _check_database_path(uri: str, database: Path) -> None:
    existing = next(parent for parent in (database, *database.parents) if parent.exists())
    folder = existing if existing != database else database.parent
    try:
        if database.is_dir() or not folder.is_dir():
            raise NotADirectoryError(
                f"{existing} is {'a folder' if database.is_dir() else 'a file'}"
            )
        if database.exists() and not os.access(database, os.W_OK):
            raise PermissionError(f"{database} is read-only")
        with tempfile.TemporaryFile(dir=folder):  # the database's journal is written beside it
            pass
    except OSError as err:
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri}: the database {database} cannot be written "
            f"({err}). Give a file in a folder you can write, e.g. "
            f"logger.mlflow.tracking_uri=sqlite:///{Path.home() / 'mlflow.db'}"
        ) from err


def _check_server(uri: str) -> None:
    health = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # it answers (a proxy or an older server without /health)
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri} does not answer ({reason}). Start the server "
            "(mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri "
            "sqlite:///mlflow.db), correct the address, or leave the key out to log to "
            "outputs/mlflow.db."
        ) from err


def artifact_location(tracking_uri: str) -> str | None:
    """A SQLite database keeps its runs' files in mlartifacts/ beside it; a server decides."""
    if tracking_uri.startswith(SQLITE):
        return str(Path(tracking_uri[len(SQLITE) :]).absolute().parent / "mlartifacts")
    return None


@contextmanager
def database_lock(tracking_uri: str) -> Iterator[None]:
    """Jobs that start together (a parallel sweep) would each create the SQLite database's
    tables and the experiment, and all but one fail: one at a time."""
    if not tracking_uri.startswith(SQLITE):
        yield
        return
    database = Path(tracking_uri[len(SQLITE) :])
    database.parent.mkdir(parents=True, exist_ok=True)  # checked: a folder that can be made
    with FileLock(f"{database}.lock"):
        yield


def _log_in_batches(client: Any, run_id: str, params: dict[str, str], tags: dict[str, str]) -> None:
    from mlflow.entities import Param, RunTag
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

    entries: list[Any] = [Param(key, value[:MAX_PARAM_VAL_LENGTH]) for key, value in params.items()]
    entries += [RunTag(key, value) for key, value in tags.items()]
    for first in range(0, len(entries), MAX_PARAMS_TAGS_PER_BATCH):
        batch = entries[first : first + MAX_PARAMS_TAGS_PER_BATCH]
        client.log_batch(
            run_id,
            params=[entry for entry in batch if isinstance(entry, Param)],
            tags=[entry for entry in batch if isinstance(entry, RunTag)],
        )
