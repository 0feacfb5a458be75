"""Every path somcolor uses, in one place.

Raw data is immutable (``data/raw``), intermediates are cached (``data/interim``),
results are regenerated (``experiments/results``). The bundled model ships inside
the package so that an installed somcolor finds it without the repository.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = REPO_DIR / "data"
RAW_DIR = DATA_DIR / "raw"
INTERIM_DIR = DATA_DIR / "interim"
RESULTS_DIR = REPO_DIR / "experiments" / "results"
DEFAULT_MODEL = PACKAGE_DIR / "models" / "default.npz"
