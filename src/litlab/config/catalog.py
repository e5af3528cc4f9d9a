"""What conf/ offers, read from its files: the config groups, each group's options with the
first line of their description (the file's leading comment), and an option's file, for
`litlab ls`, `litlab cat` and `litlab cp`. Imports no torch."""

import difflib
import re
import shutil
from pathlib import Path

import yaml

from litlab import CONFIG_DIR
from litlab.errors import ConfigError

DIRECTIVE = "# @package"  # Hydra's header line: not a description
WIDTH = 90  # of a description in `litlab ls`


def groups(root: Path = CONFIG_DIR) -> list[str]:
    """Every folder of options, nested ones as ``hydra/launcher``."""
    return sorted(
        str(folder.relative_to(root))
        for folder in root.rglob("*")
        if folder.is_dir() and any(folder.glob("*.yaml"))
    )


def options(group: str, root: Path = CONFIG_DIR) -> dict[str, str]:
    """``{option: the first line of its description}`` of one group."""
    return {path.stem: description(path) for path in sorted((root / group).glob("*.yaml"))}


def entry_configs(root: Path = CONFIG_DIR) -> dict[str, str]:
    """The configs the commands start from (train, eval, predict, export)."""
    return {path.stem: description(path) for path in sorted(root.glob("*.yaml"))}


def description(path: Path) -> str:
    """The first sentence of a config file's leading comment ("" when it has none)."""
    words = []
    for line in path.read_text().splitlines():
        if line.startswith(DIRECTIVE):
            continue
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    sentence = re.split(r"(?<!\.)\.\s", " ".join(words), maxsplit=1)[0]  # not "..."
    if len(sentence) <= WIDTH:
        return sentence
    return sentence[: sentence.rfind(" ", 0, WIDTH - 3)] + " ..."


def config_file(name: str, root: Path = CONFIG_DIR) -> Path:
    """The file of ``group/option`` (or of an entry config, ``train``)."""
    path = root / f"{name.removesuffix('.yaml')}.yaml"
    if path.is_file():
        return path
    known = [*entry_configs(root), *(f"{g}/{o}" for g in groups(root) for o in options(g, root))]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(
        f"{name} is not a config of litlab.{hint} `litlab ls` lists them all, as group/option "
        "(e.g. experiment/mnist_cnn)."
    )


def copy_config(name: str, destination: Path, root: Path = CONFIG_DIR) -> Path:
    """Copy ``group/option`` to edit it: to ``destination`` when that ends in .yaml, else to
    ``<destination>/group/my_<option>.yaml``, where ``--config-dir <destination>`` finds it. A
    copy keeps out of the shipped option's name (Hydra's search path reads litlab's conf/
    first, so the shipped one would be chosen), and never overwrites a file."""
    source = config_file(name, root)
    relative = source.relative_to(root)
    if destination.suffix == ".yaml":
        target = destination
        shipped = options(str(relative.parent), root)
        if target.stem in shipped and target.parent.name == relative.parent.name:
            other = target.with_name(f"my_{target.name}")
            raise ConfigError(
                f"{target.name} has the name of a config litlab ships, which Hydra would choose "
                f"instead of the copy: name it otherwise, e.g. {other}."
            )
    else:
        target = destination / relative.parent / f"my_{relative.name}"
    if target.exists():
        raise ConfigError(
            f"{target} exists already and was left as it is. Copy under another folder, or "
            "delete it first."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def shipped_options(group: str) -> dict[str, dict]:
    """The options litlab ships for a config group: each conf/<group>/<name>.yaml with the
    options of the same group that its defaults list names merged under it (interpolations
    unresolved): enough to read their facts without composing each."""
    written = {
        path.stem: yaml.safe_load(path.read_text()) or {}
        for path in sorted((CONFIG_DIR / group).glob("*.yaml"))
    }

    def merged(name: str) -> dict:
        node = dict(written[name])
        bases = [d for d in node.pop("defaults", []) if isinstance(d, str) and d in written]
        return {key: value for base in bases for key, value in merged(base).items()} | node

    return {name: merged(name) for name in written}


def data_sets() -> dict[str, dict]:
    """The shipped data options that are data sets: those that need no files of the user's
    (``data=image_folder`` and ``data=table`` leave ``root`` or ``path`` to be given, ``???``)."""
    return {
        name: node for name, node in shipped_options("data").items() if "???" not in node.values()
    }
