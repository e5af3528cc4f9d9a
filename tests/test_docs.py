"""README.md and docs/: the README stays a short page that links every guide, the configs page
lists exactly what conf/ holds, and every training command in them composes and passes the
checks. (The lessons' commands and outcomes: tests/test_lessons.py; docs/own_parts.md's
files: tests/test_entries.py; the site builds with `mkdocs build --strict` in CI.)"""

import re
from pathlib import Path

import pytest

from litlab.config import compose_config, validate_config
from litlab.config.catalog import groups, options
from tests.helpers import DOCS, README, make_folder_a_command_reads, runs_of, training_commands


def test_the_readme_is_short_and_links_every_guide():
    text = README.read_text()
    assert len(text.splitlines()) < 250
    linked = set(re.findall(r"\]\(docs/([\w.]+\.md)", text))
    pages = {path.name for path in DOCS.glob("*.md")} - {"index.md", "changelog.md"}
    assert pages <= linked, pages - linked


def configs_table() -> dict[str, set[str]]:
    """``{group: its options}`` as the table of docs/configs.md lists them."""
    rows = re.findall(r"^\| `([\w/]+)` \| (.*?) \|", (DOCS / "configs.md").read_text(), re.M)
    return {group: set(re.findall(r"`(\w+)`", cell)) for group, cell in rows}


def test_the_configs_page_lists_every_option_of_every_group():
    table = configs_table()
    assert set(table) == set(groups())
    for group in groups():
        assert table[group] == set(options(group)), group


def test_the_docs_show_training_commands():
    assert len(training_commands()) >= 20


@pytest.mark.parametrize("command", training_commands())
def test_every_training_command_of_the_docs_passes_the_checks(command, tmp_path, monkeypatch):
    plugins = ("hparams_search", "hydra/launcher", "hydra.sweeper", "hydra.launcher")
    if any(name in command for name in plugins):
        pytest.importorskip("optuna")
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    if make_folder_a_command_reads(command, tmp_path):
        monkeypatch.chdir(tmp_path)
    for overrides in runs_of(command):
        cfg = compose_config([*overrides, f"paths.data_dir={tmp_path}"], Path(tmp_path) / "run")
        validate_config(cfg)
