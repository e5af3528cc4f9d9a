"""The libraries' refusals as litlab's errors: one translation for every command and every
stage (Hydra composing the config, Lightning setting up or fitting, Optuna and SQLAlchemy
running a search, onnx exporting, the operating system writing a file).

A refusal is recognised by the library it comes from (the exception's class, or the innermost
frame of its traceback) and becomes a :class:`LitlabError`: one paragraph with the library's
own words, the key or file they concern, and the fix. Anything else stays a bug, with its
traceback. Imports no library: it reads names only.
"""

import difflib
import errno
import re
from collections.abc import Callable, Iterable
from types import TracebackType

from litlab.errors import (
    ConfigError,
    ExportError,
    LitlabError,
    MachineError,
)

SEARCH_PACKAGES = ("optuna", "sqlalchemy")
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime", "onnx_ir", "torch.onnx")
# no room: a full disk, a quota, or a file size limit (ulimit -f)
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def translated(
    err: BaseException, known_keys: Callable[[], Iterable[str]] = tuple
) -> LitlabError | None:
    """``err`` as a LitlabError, or None when it is a bug. ``known_keys`` lists the config's
    keys (dotted), to name the one a library's message or a typo means."""
    if isinstance(err, LitlabError):
        return err
    inner = resolver_refusal(err)
    if inner is not None:
        return inner
    rules = (_hydra_refusal, _tracker_refusal, _search_refusal, _export_refusal, _lightning_refusal)
    for rule in rules:
        found = rule(err, known_keys)
        if found is not None:
            return found
    return _os_refusal(err)


def resolver_refusal(err: BaseException) -> LitlabError | None:
    """litlab's own error, raised by a resolver that reads a user's folder or table
    (``${image_folder:...}``), which OmegaConf re-raises as its own."""
    if not type(err).__module__.startswith(("omegaconf", "hydra")):
        return None
    inner = err.__cause__ or err.__context__
    while inner is not None and not isinstance(inner, LitlabError):
        inner = inner.__cause__ or inner.__context__
    return inner


def _modules(err: BaseException) -> set[str]:
    """The modules that raised ``err``: its class's and its innermost frame's."""
    modules = {type(err).__module__}
    tb: TracebackType | None = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        modules.add(str(tb.tb_frame.f_globals.get("__name__", "")))
    return modules


def _raised_in(err: BaseException, packages: Iterable[str]) -> bool:
    return any(
        module == package or module.startswith(f"{package}.")
        for module in _modules(err)
        for package in packages
    )


def one_paragraph(text: str) -> str:
    """A library's message, which may span lines and end in a link, as one sentence run."""
    text = re.sub(r"\s*See https?://\S+ for details\.?", "", str(text))
    return " ".join(text.split()).rstrip(".")


# -- Hydra: composing the config from the command line ----------------------------------------
def _hydra_refusal(err: BaseException, known_keys: Callable) -> LitlabError | None:
    kind = type(err).__name__
    if not _raised_in(err, ("hydra",)) or kind not in (
        "OverrideParseException",
        "ConfigCompositionException",
        "MissingConfigException",
    ):
        return None
    if kind == "OverrideParseException":
        return ConfigError(_unreadable_override(err))
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", str(err))
    options = re.search(
        r"Available options in '[^']+':\s*(.*?)(?:\n\s*\n|Config search path|$)", str(err), re.S
    )
    if missing and options:
        return ConfigError(
            _unknown_option(missing.group(1), missing.group(2), options.group(1).split())
        )
    unloadable = re.search(r"Could not load '([^']+)/([^'/]+)'", str(err))  # logger=[a,b]
    if unloadable:
        from litlab.config.catalog import options as shipped_options

        group, option = unloadable.groups()
        shipped = list(shipped_options(group))
        if shipped and option not in shipped:
            return ConfigError(_unknown_option(group, option, shipped))
    message = one_paragraph(err)
    cause = err.__cause__
    if cause is not None and type(cause).__module__.startswith("omegaconf"):
        message = f"{message}: {one_paragraph(str(cause).splitlines()[0])}"
    typo = re.search(r"Could not override '([^']+)'", message)
    if typo and "not in struct" in message:
        return ConfigError(_unknown_key(typo.group(1), known_keys))
    added = re.search(r"An item is already at '([^']+)'", message)
    if added:
        return ConfigError(
            f"+{added.group(1)} adds a key that already exists: set it without the +, e.g. "
            f"{added.group(1)}=<value>."
        )
    return ConfigError(message + ".")


def _unreadable_override(err: BaseException) -> str:
    """A value with '=' (a path) or brackets: the override quoted as Hydra and a shell read it."""
    override = str(getattr(err, "override", "") or "")
    key, _, value = override.partition("=")
    example = f"'{key}=\"{value}\"'" if value else "'key=\"a=b\"'"
    return (
        f"Could not read {override or 'an override'!r} "
        f"({one_paragraph(getattr(err, 'message', err))}). A value that holds '=', spaces, "
        f"commas, brackets or quotes must be quoted for Hydra, inside quotes for the shell: "
        f"{example}."
    )


def _unknown_option(group: str, option: str, options: list[str]) -> str:
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
    guess = f"; did you mean {group}={close[0]}?" if close else "."
    return (
        f"{group}={option} is not an option of {group}{guess} The options: {', '.join(options)} "
        f"(litlab ls {group} describes each)."
    )


def _unknown_key(key: str, known_keys: Callable[[], Iterable[str]]) -> str:
    """Hydra advises ``+key=`` for a key it does not know; a typo is the likelier cause."""
    parent = key.rpartition(".")[0]
    siblings = [k for k in known_keys() if k.rpartition(".")[0] == parent]
    leaves = {sibling.rpartition(".")[2]: sibling for sibling in siblings}
    close = difflib.get_close_matches(key.rpartition(".")[2], leaves, n=1, cutoff=0.6)
    if close and leaves[close[0]] == key:  # the key of another option of its group
        return _key_of_another_option(key)
    if close:
        return (
            f"{key} is not a key of this config: did you mean {leaves[close[0]]}? (To add a key of "
            f"your own, prefix it with +: +{key}=<value>.)"
        )
    shown = ", ".join(k.rpartition(".")[2] for k in siblings[:12]) or "none"
    where = f"under {parent}" if parent else "at the top level"
    return (
        f"{key} is not a key of this config. The keys {where}: {shown}"
        f"{' ...' if len(siblings) > 12 else ''}. (To add a key of your own, prefix it with "
        f"+: +{key}=<value>.)"
    )


# -- MLflow and W&B: logger=mlflow, logger=wandb -----------------------------------------------
TRACKERS = {"mlflow": ("MLflow", "logger.mlflow.tracking_uri"), "wandb": ("W&B", "logger.wandb")}


def _tracker_refusal(err: BaseException, known_keys: Callable) -> LitlabError | None:
    """A tracker's server or database refused (a login, a deleted run, a locked file)."""
    for package, (name, keys) in TRACKERS.items():
        # their own exception classes only: a TypeError inside them is litlab's bug
        if type(err).__module__.split(".")[0] == package:
            return ConfigError(
                f"{name} refused ({type(err).__name__}: {one_paragraph(err)}). Check {keys} "
                f"(and the {name} server or login it needs), or train without it: "
                "logger=tensorboard."
            )
    return None


# -- Optuna and SQLAlchemy: a hyperparameter search -------------------------------------------
def _key_of_another_option(key: str) -> str:
    """A key that the options chosen on the command line lack, though another option of its
    group has it (a part's recommended option is applied after the command line is read)."""
    from litlab.config.catalog import shipped_options

    group, _, leaf = key.partition(".")
    having = [name for name, node in shipped_options(group).items() if leaf in node]
    owners = " and ".join(f"{group}={name}" for name in having) or f"another {group} option"
    choose = f"{group}={having[0]} " if having else ""
    return (
        f"{key} is a key of {owners}, which this command has not chosen (a part's recommended "
        f"{group} is applied after the command line is read). Choose it with the key: "
        f"{choose}{key}=<value>."
    )


def _search_refusal(err: BaseException, known_keys: Callable) -> LitlabError | None:
    if not _raised_in(err, SEARCH_PACKAGES):
        return None
    message = one_paragraph(err)
    if "No trials are completed yet" in message:
        return ConfigError(
            "Every trial of the search failed, so there is no best one. The cause is in each "
            "job's status.json and in the sweep's sweep_summary.md; run one trial's overrides "
            "without -m to see its error."
        )
    return ConfigError(
        f"The Optuna search could not go on ({type(err).__name__}: {message}). Check "
        "hydra.sweeper.storage (null, or a URL such as sqlite:///outputs/study.db in a folder "
        "that exists and can be written), hydra.sweeper.study_name and hydra.sweeper.n_trials "
        "(a number >= 1)."
    )


# -- onnx, onnxscript, onnxruntime: export.py ---------------------------------------------------
def _export_refusal(err: BaseException, known_keys: Callable) -> LitlabError | None:
    if not _raised_in(err, EXPORT_PACKAGES) or isinstance(err, OSError):
        return None
    return ExportError(
        f"The ONNX export failed ({type(err).__name__}: {one_paragraph(err)}). "
        "format=pt2 exports the same model with torch.export instead; the ONNX exporter "
        "supports fewer operations."
    )


# -- Lightning: settings it refuses once it sees the data and the model ------------------------
def _lightning_refusal(err: BaseException, known_keys: Callable) -> LitlabError | None:
    """Only Lightning's own exception for settings: a ValueError from inside Lightning may be
    litlab handing it something wrong, a bug to be shown as one."""
    if type(err).__name__ != "MisconfigurationException" or not _raised_in(err, ("lightning",)):
        return None
    message = one_paragraph(err)
    keys = _keys_named(message, known_keys(), ("trainer.", "callbacks."))
    fix = f"Change {' or '.join(keys)}" if keys else "Change the trainer or callbacks key it names"
    return ConfigError(
        f"Lightning refused the run's settings: {message}. {fix} (the keys: python train.py "
        "--cfg job --package trainer)."
    )


def _keys_named(message: str, keys: Iterable[str], prefixes: tuple[str, ...]) -> list[str]:
    """The config keys whose last part the message names as a word (limit_val_batches)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
    return sorted(
        key for key in keys if key.startswith(prefixes) and key.rpartition(".")[2] in words
    )[:3]


# -- the operating system: a full disk, a folder without permission -----------------------------
def _os_refusal(err: BaseException) -> LitlabError | None:
    if not isinstance(err, OSError) or err.errno is None:
        return None
    where = f" {err.filename}" if err.filename else ""
    if err.errno in DISK_FULL:
        return MachineError(
            f"No room to write{where} ({err.strerror}: the disk is full or a size limit was "
            "reached). Free space, or write elsewhere (paths.log_dir=<folder> for run "
            "folders); files written before this one are kept."
        )
    if err.errno in NOT_ALLOWED:
        return MachineError(
            f"Not allowed to write{where} ({err.strerror}). Choose a folder you can write, "
            "e.g. paths.log_dir=<folder>, or change its permissions."
        )
    return None  # a missing file: litlab checks the paths a user gives, so a bug
