"""litlab.config.catalog and the `litlab` command: what conf/ offers, listed, shown and copied
from its files; a config checked for every problem at once."""

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from litlab import CONFIG_DIR, PROJECT_ROOT
from litlab.config.catalog import config_file, copy_config, description, groups, options
from litlab.errors import ConfigError

LITLAB = [str(Path(sys.executable).parent / "litlab")]


def litlab(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*LITLAB, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_option_of_every_group_is_found_with_a_description():
    files = sorted(CONFIG_DIR.rglob("*.yaml"))
    found = {CONFIG_DIR / group / f"{name}.yaml" for group in groups() for name in options(group)}
    assert found == {path for path in files if path.parent != CONFIG_DIR}
    undescribed = [str(path) for path in found if not description(path)]
    assert undescribed == []  # each option's file starts with a comment saying what it is


def test_a_description_is_the_leading_comments_first_sentence(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("# @package _global_\n# One thing: ckpt_path=... here. More\n# text.\na: 1\n")
    assert description(path) == "One thing: ckpt_path=... here"
    path.write_text("a: 1\n# not leading\n")
    assert description(path) == ""


def test_an_unknown_config_gets_the_closest_names():
    with pytest.raises(ConfigError, match="Did you mean experiment/mnist_cnn"):
        config_file("experiment/mnist_cnnn")


def test_a_copy_gets_a_name_of_its_own_and_is_never_written_over_a_file(tmp_path):
    target = copy_config("model/mlp", tmp_path)
    assert target == tmp_path / "model" / "my_mlp.yaml"  # mlp.yaml: litlab's would be chosen
    assert target.read_text() == (CONFIG_DIR / "model" / "mlp.yaml").read_text()
    target.write_text("# mine\n")
    with pytest.raises(ConfigError, match="exists already"):
        copy_config("model/mlp", tmp_path)
    assert target.read_text() == "# mine\n"
    with pytest.raises(ConfigError, match="name of a config litlab ships"):
        copy_config("model/mlp", tmp_path / "model" / "mlp.yaml")
    assert copy_config("model/mlp", tmp_path / "model" / "wide.yaml").is_file()


def test_litlab_ls_lists_groups_and_options():
    result = litlab("ls")
    assert result.returncode == 0, result.stderr
    assert "model:" in result.stdout and "experiment:" in result.stdout
    assert "  transformer  A small Vision-Transformer-style encoder" in result.stdout
    one = litlab("ls", "loss")
    assert one.stdout.splitlines()[0] == "loss:" and "model:" not in one.stdout


def test_litlab_cat_and_cp_give_a_config_that_train_py_uses(tmp_path):
    shown = litlab("cat", "experiment/mnist_cnn")
    assert shown.stdout == (CONFIG_DIR / "experiment" / "mnist_cnn.yaml").read_text()
    copied = litlab("cp", "experiment/mnist_cnn", str(tmp_path / "my_conf"))
    assert copied.returncode == 0 and "experiment=my_mnist_cnn" in copied.stdout
    mine = tmp_path / "my_conf" / "experiment" / "my_mnist_cnn.yaml"
    mine.write_text(mine.read_text().replace("max_epochs: 5", "max_epochs: 2"))
    composed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), "--config-dir", str(mine.parent.parent)]
        + ["experiment=my_mnist_cnn", "--cfg", "job", "--package", "trainer"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "max_epochs: 2" in composed.stdout, composed.stderr


def test_litlab_check_lists_every_problem_at_once():
    result = litlab("check", "optimizer.lr=-1", "trainer.max_epochs=0", "data=iris", "model=cnn")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert [line.split("=")[0] for line in errors] == [
        "Error: trainer.max_epochs",
        "Error: optimizer.lr",
        "Error: model",
    ]
    assert "3 problem(s)" in result.stderr
    assert litlab("check", "model=mlp", "data=iris").stdout.startswith("The config passes")


def test_litlab_check_names_the_closest_key_and_option():
    """It printed Hydra's own words: the advice to add + and a multi-line option list."""
    key = litlab("check", "optimizer.lrr=1")
    assert key.returncode == 2
    assert key.stderr.startswith("Error: optimizer.lrr is not a key of this config: did you mean")
    option = litlab("check", "model=cnnn")
    assert "did you mean model=cnn?" in " ".join(option.stderr.split())


def test_litlab_show_prints_the_config_with_the_recommendations_applied():
    shown = litlab("show", "data=iris", "model=mlp")
    assert shown.returncode == 0, shown.stderr
    first, *rest = shown.stdout.splitlines()
    assert first.startswith("# Recommended settings applied") and "(data=iris)" in first
    cfg = OmegaConf.create("\n".join(rest))
    assert cfg.trainer.max_epochs == 100 and "hydra" not in cfg
    assert "recommended" not in cfg.data
    typo = litlab("show", "model=cnnn")
    assert typo.returncode == 2 and "did you mean model=cnn?" in " ".join(typo.stderr.split())
