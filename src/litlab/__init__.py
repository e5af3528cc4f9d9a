"""litlab: a Lightning + Hydra experiment framework for neural networks."""

from pathlib import Path

from litlab.errors import LitlabError  # every user error: the API raises it, the commands print it

__version__ = "0.1.0"

# The project checkout, where conf/ and outputs/ live (litlab is installed with `pip install -e`).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


# The Python API (litlab.api), imported on first use: `import litlab` stays light for the
# command line, which reads the paths above before Hydra starts.
_API = ("fit", "evaluate", "predict", "RunResult")
__all__ = ["LitlabError", *_API]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562
    if name in _API:
        from litlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'litlab' has no attribute {name!r}")
