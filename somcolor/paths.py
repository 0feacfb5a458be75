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
#: The paper's configuration (SOM 3x3, 5x5 patch, MLP 50+50, argmax): ~10x faster, duller.
FAST_MODEL = PACKAGE_DIR / "models" / "fast.npz"
#: Models that ship with somcolor, by the name ``--model`` also accepts.
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "fast": FAST_MODEL}


def model_path(model=None) -> Path:
    """A model file: ``model`` itself, or the bundled model it names (None: ``default``).

    A bundled model's name means that model unless a file of that name exists (a
    folder of that name is no model file).

    >>> model_path("fast").name, model_path().name
    ('fast.npz', 'default.npz')
    """
    if model is None:
        return DEFAULT_MODEL
    if str(model) in BUNDLED_MODELS and not Path(model).is_file():
        return BUNDLED_MODELS[str(model)]
    return Path(model)


#: The bundled model the video commands use unless told otherwise: the default, which
#: predicts at its working size and runs on a second thread while the other decodes and
#: encodes: 16.5-17.7 frames/s at 640x480 on 2 cores of an AMD EPYC, as fast as ``fast``
#: (16.1-16.3) in the same runs (``python -m experiments.bench_video --model default``,
#: 2026-12-03).
VIDEO_MODEL = "default"
