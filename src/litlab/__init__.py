"""litlab: a Lightning + Hydra experiment framework for neural networks."""

from pathlib import Path

__version__ = "0.1.0"

# The project checkout, where conf/ and outputs/ live (litlab is installed with `pip install -e`).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"
