"""The layers of src/litlab, read from its import statements with ast: imports point down only
(entry points -> orchestration -> parts -> foundations), nothing imports the entry layer, and
there are no cycles. Imports inside functions count: a lazy import is still a dependency."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from litlab import PROJECT_ROOT

SOURCE = PROJECT_ROOT / "src" / "litlab"

# Each module's layer, by module name or package prefix; the longest match wins.
LAYERS = {
    "litlab.cli": 3,  # entry points
    "litlab.api": 3,  # the same, from Python
    "litlab.train": 2,  # orchestration
    "litlab.cross_validation": 2,
    "litlab.evaluate": 2,
    "litlab.predict": 2,
    "litlab.export": 2,
    "litlab.sweep": 2,
    "litlab.run_start": 2,
    "litlab.hparams_search": 2,  # the sweeper's body and a job's side of its trial
    "litlab.hparams_search.study": 0,  # also read by a callback
    "litlab.hparams_search.search_space": 0,
    "litlab.build": 1,  # parts
    "litlab.lightning_modules": 1,
    "litlab.data": 1,
    "litlab.models": 1,
    "litlab.callbacks": 1,
    "litlab.report": 1,
    "litlab.tensorboard": 1,
    "litlab.loggers": 1,
    "litlab.tune": 1,
    "litlab": 0,  # foundations: config, run_folder, resume, checkpoint, record, errors, ...
}
LAYER_NAMES = {3: "entry", 2: "orchestration", 1: "parts", 0: "foundations"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)]


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The litlab modules that ``path`` imports (``from litlab.x import y`` counts ``litlab.x.y``
    when that is a module, else ``litlab.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; litlab imports absolutely"
            base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(SOURCE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): imports_of(path, modules) for path in paths}
    # a package's own __init__ importing its submodules is how packages export: not an edge up
    # (litlab's own forwards litlab.fit ... to litlab.api on first use, PEP 562)
    return {
        module: {other for other in imported if not other.startswith(module + ".")}
        for module, imported in graph.items()
    }


GRAPH = import_graph()


def test_the_graph_was_read():
    assert {"litlab.cli", "litlab.train", "litlab.resume", "litlab.run_folder"} <= set(GRAPH)
    assert "litlab.resume" in GRAPH["litlab.train"]
    assert "litlab.run_folder" in GRAPH["litlab.checkpoint"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    upward = {
        other: LAYER_NAMES[layer(other)] for other in GRAPH[module] if layer(other) > layer(module)
    }
    assert not upward, f"{module} ({LAYER_NAMES[layer(module)]}) imports a higher layer: {upward}"


def test_nothing_imports_the_entry_layer():
    importers = sorted(module for module, imported in GRAPH.items() if "litlab.cli" in imported)
    assert importers == []


def test_there_are_no_import_cycles():
    """Depth-first search for a back edge; the message shows the cycle."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module], _ = "open", path.append(module)
        for other in sorted(GRAPH.get(module, ())):
            if state.get(other) == "open":
                cycle = path[path.index(other) :] + [other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        state[module], _ = "done", path.pop()

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_command_line_checks_a_general_key_without_importing_torch():
    """A typo in a general key is answered in a fraction of a second: the entry layer, the
    config checks and the resume rules load no torch or Lightning before they name it (the
    parts' checks and train() import them after)."""
    code = (
        "import sys, litlab.cli, litlab.report.run, litlab.report.sweep\n"
        "from litlab.config import compose_config, validate_config\n"
        "from litlab.errors import ConfigError\n"
        "try:\n"
        "    validate_config(compose_config(['model=cnn', 'optimizer.lr=-1'], 'unused'))\n"
        "except ConfigError as err:\n"
        "    assert str(err).startswith('optimizer.lr=-1'), err\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the tests mirror the code ---------------------------------------------------------------
TESTS = PROJECT_ROOT / "tests"
# Packages tested as a whole, where one file reads better than one per module (the modules'
# behaviour is alike, or shows only together); every other module has tests/test_<module>.py,
# the callbacks tests/callbacks/test_<module>.py.
PACKAGE_TESTS = {
    "litlab.models": ["test_models.py"],
    "litlab.data": ["test_data.py"],
    "litlab.lightning_modules": ["test_lightning_modules.py"],
    "litlab.report": ["test_report.py"],
    "litlab.config": ["test_config.py"],  # checks, compose, domains, losses; entries, catalog
    "litlab.tensorboard": ["test_report.py", "test_tensorboard_server.py"],  # its files, served
}


TEST_FOLDERS = ("callbacks", "loggers")


def expected_test_files(module: str) -> list[Path]:
    package = next((p for p in PACKAGE_TESTS if module == p or module.startswith(p + ".")), None)
    name = module.rsplit(".", 1)[-1]
    own = [TESTS / f"test_{name}.py"]
    for folder in TEST_FOLDERS:  # packages whose tests have a folder of their own
        if module.startswith(f"litlab.{folder}."):
            own = [TESTS / folder / f"test_{name}.py"]
    return own + [TESTS / file for file in PACKAGE_TESTS.get(package, [])]


@pytest.mark.parametrize(
    "module",
    sorted(
        m for m in GRAPH if m.count(".") and not (SOURCE / f"{m[7:]}".replace(".", "/")).is_dir()
    ),
)
def test_every_module_has_its_tests(module):
    """A module of its own tested by its own file, or its package's; the entry layer's
    commands by test_cli.py."""
    files = expected_test_files(module)
    assert any(path.is_file() for path in files), f"{module}: none of {files} exists"
