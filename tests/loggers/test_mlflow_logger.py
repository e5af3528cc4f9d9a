"""logger=mlflow against real MLflow databases (SQLite files in tmp_path): what a run records,
how it ends, how a resume continues it, and the tracking URIs refused before training.
tests/loggers/test_live_trackers.py runs it against an `mlflow server` and in a browser."""

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.plugins.hparams import plugin_data_pb2

from litlab.errors import ConfigError, TrainingInterrupted
from litlab.loggers.mlflow_logger import MlflowLogger, artifact_location, check_tracking_uri
from litlab.loggers.run_facts import TrackedRun
from litlab.loggers.tracker import tracking
from litlab.run_folder import CONFIG, METRICS, PLOTS, REPORT, TRACKER_IDS
from litlab.train import train
from tests.helpers import events


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    """One database for the module: MLflow creates its tables in about a second."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def a_run_folder(folder: Path, **config) -> TrackedRun:
    """A run folder holding what a finished run leaves for its tracker to keep."""
    (folder / PLOTS).mkdir(parents=True)
    (folder / CONFIG).write_text("seed: 1\n")
    (folder / REPORT).write_text("# report\n")
    (folder / METRICS).write_text(json.dumps({"test/acc": 0.5, "model/params": 123.0}))
    (folder / PLOTS / "learning_curves.png").write_bytes(b"png")
    config = {"seed": 1, "optimizer": {"lr": 0.01}, "paths": {"log_dir": "/x"}, **config}
    return TrackedRun(folder, folder.name, "study", config, tags=["baseline"], notes="why")


def run_block(logger: MlflowLogger, error: BaseException | None = None) -> None:
    """What train() does around training: start the tracker, run, end it as the block ends."""
    trainer = SimpleNamespace(loggers=[logger], is_global_zero=True)
    try:
        with tracking(trainer):
            logger.log_metrics({"val/acc": 0.5}, step=3)
            if error is not None:
                raise error
    except BaseException as raised:  # noqa: BLE001 - the block's own error, as expected
        assert raised is error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "FINISHED"),
        (RuntimeError("boom"), "FAILED"),
        (KeyboardInterrupt(), "KILLED"),
        (TrainingInterrupted("SIGTERM", 15), "KILLED"),
    ],
)
def test_a_run_ends_as_it_ended_with_its_files(database, tmp_path, error, status):
    run = a_run_folder(tmp_path / "run")
    logger = MlflowLogger(run, database, experiment_name="study")
    run_block(logger, error)
    client = MlflowClient(database)
    recorded = client.get_run(logger.run_id)
    assert recorded.info.status == status and recorded.info.run_name == "run"
    assert recorded.data.params == {"seed": "1", "optimizer.lr": "0.01"}  # no machine paths
    tags = recorded.data.tags
    assert tags["litlab.task"] == "study" and tags["litlab.run_folder"] == str(run.folder)
    assert tags["baseline"] == "true" and tags["mlflow.note.content"] == "why"
    assert tags["mlflow.source.git.commit"] == tags["litlab.git_commit"]
    assert recorded.data.metrics == {"val/acc": 0.5, "test/acc": 0.5, "model/params": 123.0}
    files = {item.path for item in client.list_artifacts(logger.run_id)}
    assert files == {CONFIG, REPORT, METRICS, PLOTS}
    assert [item.path for item in client.list_artifacts(logger.run_id, PLOTS)] == [
        "plots/learning_curves.png"
    ]
    assert json.loads((run.folder / TRACKER_IDS).read_text()) == {"mlflow": logger.run_id}


def test_a_continued_run_logs_each_step_once(database, tmp_path):
    run = a_run_folder(tmp_path / "run")
    first = MlflowLogger(run, database)
    trainer = SimpleNamespace(loggers=[first], is_global_zero=True)
    with pytest.raises(KeyboardInterrupt), tracking(trainer):
        for step in range(5):
            first.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        raise KeyboardInterrupt
    run.config["trainer"] = {"max_epochs": 9}  # resume=force may extend a run
    run.config["seed"] = 2  # a parameter MLflow keeps as it was: not logged again
    assert MlflowLogger(run, database).continued_id is None  # not a resume: a new run
    run.continuing = True  # resume=auto: from the folder's own checkpoint
    second = MlflowLogger(run, database)
    assert second.continued_id == first.run_id
    with tracking(SimpleNamespace(loggers=[second], is_global_zero=True)):
        assert MlflowClient(database).get_run(first.run_id).info.status == "RUNNING"
        for step in range(3, 7):  # the steps after the last checkpoint run again
            second.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        second.log_metrics({"test/loss": 0.2}, step=4)  # new at a logged step: kept
    client = MlflowClient(database)
    assert [point.step for point in client.get_metric_history(first.run_id, "test/loss")] == [4]
    assert [point.step for point in client.get_metric_history(first.run_id, "loss")] == list(
        range(7)
    )
    recorded = client.get_run(first.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params["seed"] == "1" and recorded.data.params["trainer.max_epochs"] == "9"


def test_a_run_unknown_to_the_database_is_not_continued(database, tmp_path, caplog):
    run = a_run_folder(tmp_path / "run")
    run.remember("mlflow", "0123456789abcdef0123456789abcdef")
    run.continuing = True
    logger = MlflowLogger(run, database)
    assert logger.continued_id is None
    assert "is not in" in caplog.text and "a new MLflow run continues it" in caplog.text


def test_a_new_run_in_a_used_folder_starts_afresh(database, tmp_path):
    run = a_run_folder(tmp_path / "run")
    first = MlflowLogger(run, database)
    run_block(first, RuntimeError("the loss became NaN before any checkpoint"))
    again = MlflowLogger(a_run_folder_again(run), database)  # the same command, rerun
    run_block(again)
    assert again.run_id != first.run_id
    client = MlflowClient(database)
    assert client.get_run(first.run_id).info.status == "FAILED"
    assert json.loads((run.folder / TRACKER_IDS).read_text()) == {"mlflow": again.run_id}


def a_run_folder_again(run: TrackedRun) -> TrackedRun:
    return TrackedRun(run.folder, run.name, run.task_name, dict(run.config))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tracking_uris_that_cannot_work_are_refused(tmp_path):
    (tmp_path / "file").write_text("")
    refused = {
        f"http://127.0.0.1:{closed_port()}": "does not answer",
        f"sqlite:///{tmp_path}/file/mlflow.db": "is a file",
        f"sqlite:///{tmp_path}": "is a folder",
        "": "is not a tracking URI",
    }
    for uri, reason in refused.items():
        with pytest.raises(ConfigError, match=reason) as err:
            check_tracking_uri(uri)
        assert "logger.mlflow.tracking_uri" in str(err.value)
    check_tracking_uri(f"sqlite:///{tmp_path}/new/folder/mlflow.db")  # made at the start
    assert artifact_location(f"sqlite:///{tmp_path}/m.db") == str(tmp_path / "mlartifacts")
    assert artifact_location("http://127.0.0.1:5000") is None  # the server decides


def test_train_logs_to_the_default_database_beside_tensorboard(make_config, tmp_path):
    cfg = make_config(
        "data=synthetic_classification",
        "model=mlp",
        "trainer.max_epochs=2",
        "logger=[tensorboard,mlflow]",
        f"paths.log_dir={tmp_path}",
        "tags=[baseline]",
        "notes=the default database",
    )
    metrics = train(cfg)
    folder = Path(cfg.paths.output_dir)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")  # the default: <log_dir>/mlflow.db
    (experiment,) = [e for e in client.search_experiments() if e.name == "train"]
    assert experiment.artifact_location == str(tmp_path / "mlartifacts")
    (recorded,) = client.search_runs([experiment.experiment_id])
    assert recorded.info.status == "FINISHED" and recorded.info.run_name == folder.name
    assert recorded.data.params["model.hidden_sizes"] == "[64, 64]"
    assert recorded.data.tags["baseline"] == "true"
    history = client.get_metric_history(recorded.info.run_id, "val/acc")
    assert len(history) == 2 and len({point.step for point in history}) == 2
    for name in ("test/acc", "val/acc_best", "model/params"):
        assert recorded.data.metrics[name] == pytest.approx(metrics[name])
    files = {item.path for item in client.list_artifacts(recorded.info.run_id)}
    assert {CONFIG, REPORT, METRICS, PLOTS} <= files
    assert (folder / "tensorboard").is_dir() and (folder / "checkpoints" / "best.ckpt").is_file()
    record = json.loads((folder / "run.json").read_text())
    assert (record["tags"], record["notes"]) == (["baseline"], "the default database")
    content = events(folder).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    shown = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert shown["tags"].string_value == "baseline"  # TensorBoard's HPARAMS tab
    assert shown["notes"].string_value == "the default database"
