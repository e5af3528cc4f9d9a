"""The libraries' refusals, raised for real by the libraries, become one-paragraph LitlabErrors
naming the key or file and a fix; anything else stays a bug (None)."""

import errno

import pytest
from hydra.errors import HydraException

from litlab.config import compose_overrides
from litlab.errors import ConfigError, ExportError, LitlabError, MachineError
from litlab.library_errors import one_paragraph, translated

TRAIN_KEYS = ["optimizer.lr", "optimizer.weight_decay", "trainer.max_epochs", "trainer.devices"]


def raised_by(action) -> BaseException:
    with pytest.raises(BaseException) as caught:
        action()
    return caught.value


def test_a_key_typo_names_the_closest_key_instead_of_hydras_plus_advice():
    err = raised_by(lambda: compose_overrides(["optimizer.lrr=0.1"], "train"))
    found = translated(err, lambda: TRAIN_KEYS)
    assert isinstance(found, ConfigError)
    assert str(found).startswith(
        "optimizer.lrr is not a key of this config: did you mean optimizer.lr?"
    )


def test_a_key_of_a_recommended_option_names_the_option_to_choose():
    """model=resnet recommends scheduler=onecycle, applied after the command line is read: its
    max_lr was said to be no key, "did you mean scheduler.max_lr?" (itself)."""
    err = raised_by(lambda: compose_overrides(["model=resnet", "scheduler.max_lr=0.1"], "train"))
    message = str(translated(err, lambda: [*TRAIN_KEYS, "scheduler.max_lr"]))
    assert message.startswith("scheduler.max_lr is a key of scheduler=onecycle, which this")
    assert message.endswith("Choose it with the key: scheduler=onecycle scheduler.max_lr=<value>.")


def test_an_unknown_key_without_a_close_one_lists_its_siblings():
    err = raised_by(lambda: compose_overrides(["trainer.nope=1"], "train"))
    message = str(translated(err, lambda: TRAIN_KEYS))
    assert "The keys under trainer: max_epochs, devices." in message
    assert "+trainer.nope=<value>" in message


def test_a_value_with_an_equals_sign_is_answered_with_quoting():
    err = raised_by(lambda: compose_overrides(["hydra.run.dir=/tmp/a=b"], "train"))
    message = str(translated(err))
    assert "Could not read 'hydra.run.dir=/tmp/a=b'" in message
    assert "must be quoted" in message and "'hydra.run.dir=\"/tmp/a=b\"'" in message


def test_an_unknown_option_lists_the_options_and_the_closest():
    err = raised_by(lambda: compose_overrides(["model=cnnn"], "train"))
    message = str(translated(err))
    assert message.startswith("model=cnnn is not an option of model; did you mean model=cnn?")
    assert "simple_nn" in message and "search path" not in message


def test_adding_an_existing_key_says_to_drop_the_plus():
    err = raised_by(lambda: compose_overrides(["+trainer.max_epochs=3"], "train"))
    assert "set it without the +, e.g. trainer.max_epochs=<value>" in str(translated(err))


def test_lightnings_refusal_names_the_trainer_key():
    import lightning as L

    err = raised_by(lambda: L.Trainer(limit_val_batches=-1, logger=False))
    found = translated(err, lambda: ["trainer.limit_val_batches", "trainer.max_epochs"])
    assert isinstance(found, ConfigError)
    assert str(found).startswith("Lightning refused the run's settings:")
    assert "Change trainer.limit_val_batches" in str(found)


def test_optunas_refusals_name_the_search_keys():
    optuna = pytest.importorskip("optuna")
    err = raised_by(lambda: optuna.create_study().best_trial)
    assert "Every trial of the search failed" in str(translated(err))
    err = raised_by(lambda: optuna.create_study(storage="notaurl"))
    message = str(translated(err))
    assert message.startswith("The Optuna search could not go on (")
    assert "hydra.sweeper.storage" in message


def test_onnxs_refusal_offers_the_other_format():
    onnx = pytest.importorskip("onnx")
    err = raised_by(lambda: onnx.checker.check_model(onnx.ModelProto()))
    found = translated(err)
    assert isinstance(found, ExportError) and "format=pt2" in str(found)


@pytest.mark.parametrize(
    ("number", "kind", "words"),
    [
        (errno.ENOSPC, MachineError, "No room to write /x/model.onnx (strerror: the disk is"),
        (errno.EFBIG, MachineError, "No room to write /x/model.onnx"),
        (errno.EACCES, MachineError, "Not allowed to write /x/model.onnx"),
    ],
)
def test_the_machines_refusals_name_the_file(number, kind, words):
    err = OSError(number, "strerror", "/x/model.onnx")
    found = translated(err)
    assert isinstance(found, kind) and str(found).startswith(words)


def test_a_bug_stays_a_bug():
    assert translated(ValueError("a litlab bug")) is None
    assert translated(KeyError("x")) is None
    assert translated(OSError(errno.EBADF, "Bad file descriptor")) is None
    # litlab's own files: it checks every path a user gives, so a missing one is its bug
    assert translated(OSError(errno.ENOENT, "No such file", "/run/history.csv")) is None


def test_lightnings_other_exceptions_stay_bugs():
    """A ValueError from inside Lightning may be litlab handing it something wrong."""
    import lightning as L

    err = raised_by(lambda: L.seed_everything("abc"))  # int("abc") inside lightning.fabric
    assert isinstance(err, ValueError)
    assert translated(err) is None


def test_a_litlab_error_is_itself():
    err = ConfigError("x")
    assert translated(err) is err and isinstance(err, LitlabError)


def test_a_library_message_becomes_one_paragraph():
    text = "You requested 0.1 * 1 < 1.\n  Please increase\n See https://hydra.cc/x for details."
    assert one_paragraph(text) == "You requested 0.1 * 1 < 1. Please increase"


def test_composition_errors_are_hydra_exceptions():
    """The contract the translation reads: Hydra raises these (not Omegaconf's) on compose."""
    with pytest.raises(HydraException):
        compose_overrides(["optimizer.lrr=0.1"], "train")


def test_an_unknown_option_in_a_list_of_options_is_named_too():
    err = raised_by(lambda: compose_overrides(["logger=[tensorboard,mlfow]"], "train"))
    message = str(translated(err))
    assert message.startswith(
        "logger=mlfow is not an option of logger; did you mean logger=mlflow?"
    )
    assert "Could not load" not in message


def test_a_trackers_refusal_names_its_keys(tmp_path):
    from mlflow.tracking import MlflowClient

    err = raised_by(lambda: MlflowClient(f"sqlite:///{tmp_path}/m.db").get_run("0" * 32))
    message = str(translated(err))
    assert message.startswith("MLflow refused (MlflowException: Run with id=")
    assert "Check logger.mlflow.tracking_uri" in message and "logger=tensorboard" in message
