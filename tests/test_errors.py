"""litlab.errors: a user error is one paragraph and an exit status, never a traceback."""

import pytest

from litlab.errors import (
    ConfigError,
    NonFiniteLossError,
    TrainingInterrupted,
    exit_with,
    paragraph,
)


def test_a_message_is_one_wrapped_paragraph_that_keeps_long_keys_whole():
    key = "callbacks.last_checkpoint.every_n_train_steps=0"
    text = paragraph(ConfigError(f"{key} is invalid: it must be an integer >= 1. " * 3))
    assert text.startswith(f"Error: {key} is invalid")
    assert max(map(len, text.splitlines())) <= 100 and key in text.replace("\n", " ")


def test_each_kind_of_error_exits_with_its_status(capsys):
    for error, status in (
        (ConfigError("bad"), 2),
        (NonFiniteLossError("nan"), 3),
        (TrainingInterrupted("stopped", 15), 143),
    ):
        with pytest.raises(SystemExit) as ended:
            exit_with(error)
        assert ended.value.code == status
    assert "Stopped: stopped" in capsys.readouterr().err


def test_a_clean_stop_does_not_end_in_advice_about_tracebacks(capsys):
    with pytest.raises(SystemExit):
        exit_with(TrainingInterrupted("SIGINT received: saved last.ckpt.", 2))
    assert capsys.readouterr().err == "Stopped: SIGINT received: saved last.ckpt.\n"
    with pytest.raises(SystemExit):
        exit_with(ConfigError("bad"))
    assert "HYDRA_FULL_ERROR=1" in capsys.readouterr().err
