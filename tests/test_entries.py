"""litlab.config.entries: a part's constructor signature is its entry, read before anything is
built; and a model and a data set of a user's own, written as docs/own_parts.md says (two files
each, outside src/litlab), train from the command line and get litlab's errors for their keys."""

import re
import shlex
from pathlib import Path
from typing import Annotated

import pytest

from litlab import PROJECT_ROOT
from litlab.config import validate_config
from litlab.config.domains import (
    STARTING_WEIGHTS,
    ArgumentError,
    PositiveInt,
    Probability,
    each,
    int_at_least,
)
from litlab.config.entries import (
    IMAGES,
    arguments,
    check_node,
    checked,
    starting_weight_keys,
)
from litlab.errors import ConfigError
from litlab.models import MLP, RNN
from tests.helpers import (
    QUIET,
    TINY_MNIST,
    claim,
    compose_quiet,
    error_paragraph,
    make_tiny_mnist,
    run_entry_point,
)

OWN_PARTS = PROJECT_ROOT / "docs" / "own_parts.md"


# -- the entry of a class --------------------------------------------------------------------
class Base:
    @checked
    def __init__(self, *, size: PositiveInt, rate: Probability = 0.5) -> None:
        self.size, self.rate = size, rate


class Child(Base):
    reads = (IMAGES,)

    @checked
    def __init__(
        self, widths: Annotated[list[int], each(int_at_least(2), "integers >= 2")], **rest
    ) -> None:
        super().__init__(**rest)
        self.widths = widths


def node(**values) -> dict:
    return {"_target_": f"{__name__}.Child", **values}


def test_an_entry_follows_keyword_arguments_passed_on_to_the_base():
    assert list(arguments(Child)) == ["widths", "size", "rate"]
    assert arguments(Child)["rate"].default == 0.5 and arguments(Child)["size"].required


def test_a_bad_value_names_the_key_the_reason_and_a_value_that_works():
    with pytest.raises(ConfigError) as err:
        check_node(node(widths=[4], size=3, rate=1.5), "model")
    assert str(err.value) == (
        "model.rate=1.5 is invalid: it must be a number in [0, 1), e.g. model.rate=0.5."
    )
    with pytest.raises(ConfigError, match=r"model.widths=\[4, 1\] is invalid: widths\[1\] must"):
        check_node(node(widths=[4, 1], size=3), "model")


def test_an_unknown_key_gets_the_closest_known_one():
    with pytest.raises(ConfigError, match="model.sise is not a key of .*Did you mean model.size"):
        check_node(node(widths=[4], sise=3), "model")


def test_a_missing_required_key_is_named():
    with pytest.raises(ConfigError, match=r"model.size is required .* \+model.size=<value>"):
        check_node(node(widths=[4]), "model")


def test_the_same_domains_guard_the_constructor_called_directly():
    assert Child([4, 8], size=2).rate == 0.5
    with pytest.raises(ArgumentError, match=r"widths\[0\] must be an integer >= 2, got 1") as err:
        Child([1], size=2)
    assert err.value.argument == "widths"
    with pytest.raises(ArgumentError, match="size must be an integer >= 1, got 0"):
        Child([4], size=0)


def test_keys_that_only_set_the_starting_weights_are_marked_in_the_entry():
    class Seeded:
        def __init__(self, width: PositiveInt = 4, init: Annotated[str, STARTING_WEIGHTS] = "he"):
            pass

    assert starting_weight_keys(Seeded) == {"init"}
    assert starting_weight_keys(RNN) == {"forget_bias"} and starting_weight_keys(MLP) == {"init"}


def test_a_target_that_cannot_be_imported_is_one_paragraph():
    with pytest.raises(ConfigError, match="model._target_=nowhere.Net cannot be imported"):
        check_node({"_target_": "nowhere.Net"}, "model")


# -- a user's own model and data set, from docs/own_parts.md --------------------------------
def titled_blocks() -> dict[str, str]:
    """The page's code blocks that name a file (```python title="my_parts/x.py"), by file."""
    blocks = re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', OWN_PARTS.read_text(), flags=re.S)
    return dict(blocks)


def commands() -> list[list[str]]:
    """The page's `python train.py ...` command lines, as argument lists after train.py."""
    lines = re.findall(r"^PYTHONPATH=\. python train\.py (.*)$", OWN_PARTS.read_text(), re.M)
    return [shlex.split(line) for line in lines]


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    """A folder holding the page's files: my_parts/ (the classes) and my_conf/ (the configs)."""
    root = tmp_path_factory.mktemp("user")
    for name, text in titled_blocks().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "my_parts" / "__init__.py").write_text("")
    return root


@pytest.fixture
def user_config(user_project, monkeypatch, tmp_path):
    """compose with the user's config folder on Hydra's search path and package importable."""
    monkeypatch.syspath_prepend(str(user_project))
    search = f"hydra.searchpath=[file://{user_project / 'my_conf'}]"

    def make(*overrides: str):
        return compose_quiet([search, *overrides], tmp_path / "run")

    return make


def test_the_page_adds_a_model_and_a_data_set_with_two_files_each(user_project):
    assert sorted(titled_blocks()) == [
        "my_conf/data/moons.yaml",
        "my_conf/model/tiny_cnn.yaml",
        "my_parts/moons.py",
        "my_parts/tiny_cnn.py",
    ]
    assert [args[:3] for args in commands()] == [
        ["--config-dir", "my_conf", "model=tiny_cnn"],
        ["--config-dir", "my_conf", "data=moons"],
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model=tiny_cnn", "model.width=0"],
            "model.width=0 is invalid: it must be an integer >= 1, e.g. model.width=16.",
        ),
        (
            ["data=moons", "model=mlp", "data.noise=-1"],
            "data.noise=-1 is invalid: it must be a number >= 0, e.g. data.noise=0.2.",
        ),
        (["data=iris", "model=tiny_cnn"], "reads images ([channels, height, width])"),
        (["data=moons", "model=mlp", "loss=mse"], "is a regression loss, but data="),
    ],
)
def test_their_keys_and_facts_are_checked_as_litlabs_own(user_config, overrides, message):
    cfg = user_config(*overrides)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, dict(arg.split("=") for arg in overrides if "." not in arg))
    assert message in str(err.value)


def test_the_data_set_states_only_its_own_facts(user_config):
    data = user_config("data=moons", "model=mlp").data
    assert (data.num_outputs, data.eval_batch_size, data.input_shape) == (2, 1000, None)
    validate_config(user_config("data=moons", "model=mlp"))


@pytest.mark.claim
def test_the_pages_commands_train_from_the_command_line(user_project, tmp_path):
    """As typed on the page (the model's on tiny MNIST files instead of the real ones)."""
    model_command, data_command = commands()
    data_dir = make_tiny_mnist(tmp_path / "data")
    env = {"PYTHONPATH": str(user_project)}
    for args, extra in ((model_command, TINY_MNIST), (data_command, [])):
        run = tmp_path / args[2].split("=")[1]  # tiny_cnn, moons
        result = run_entry_point(
            "train.py",
            *args,  # --config-dir first: the overrides must follow it in one block
            *QUIET,
            *extra,
            f"hydra.run.dir={run}",
            data_dir=data_dir,
            cwd=user_project,
            quiet=False,
            extra_env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert (run / "metrics.json").is_file() and (run / "report.md").is_file()
    report = (tmp_path / "moons" / "report.md").read_text()
    accuracy = float(re.search(r"\| test/acc \| ([\d.]+) \|", report).group(1))
    claim("moons: MLP test accuracy", accuracy, above=0.95)
    assert "TinyCNN" in (tmp_path / "tiny_cnn" / "report.md").read_text()


def test_a_bad_value_of_a_users_key_is_one_paragraph_on_the_command_line(user_project, tmp_path):
    result = run_entry_point(
        "train.py",
        "--config-dir",
        "my_conf",
        "model=tiny_cnn",
        "model.width=0",
        data_dir=tmp_path,
        cwd=user_project,
        quiet=False,
        extra_env={"PYTHONPATH": str(user_project)},
    )
    assert result.returncode == 2
    assert "model.width=0 is invalid" in error_paragraph(result)
    assert "Traceback" not in result.stderr
