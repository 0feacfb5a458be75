"""somcolor: grayscale photos to plausible color, fast, on ordinary CPUs.

The paper's method (Richart, Visca & Baliosian, 2017): a self-organizing map
quantizes chroma into a small codebook, an MLP predicts each pixel's code from the
luminance patch around it.

>>> import somcolor
>>> model = somcolor.load()                          # the bundled default model
>>> model.colorize(np.zeros((8, 8), np.uint8)).shape  # doctest: +SKIP
(8, 8, 3)

Modules, in data-flow order: ``io`` -> ``color`` -> ``quantize`` (the SOM) ->
``patches`` -> ``features`` -> ``classify`` (training; its forward pass is ``network``)
-> ``decode`` -> ``predict`` (inference from a model file's arrays, without
scikit-learn, and the one working-size prior; its fused kernels are ``fused``, its file
checks ``modelfile``) -> guidance over that prior: ``guide`` (colour hints) and ``adapt``
(reference photos) -> ``model`` (the ``Model`` that composes them, what users call) ->
``pipeline`` (the ``Colorizer``: training, and a ``Model`` for inference);
``evaluate`` measures quality; ``cli`` (with ``archive`` for many files), ``video`` (with
``temporal``) and ``web`` sit on top (the benchmarks are in ``experiments/``). Beside them:
``params`` declares the Colorizer's parameters once (defaults, allowed values, CLI
options), ``resize`` and ``smooth`` give ``predict`` its working size and guided
filter, ``backends`` holds the optional CNNs, ``datasets`` and ``paths`` the data.
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["Colorizer", "load", "__version__"]


def load(path=None):
    """Load a model file, or a bundled model by name (``"default"`` when None, ``"fast"``)."""
    from .paths import model_path
    from .pipeline import Colorizer

    return Colorizer.load(model_path(path))


def __getattr__(name):  # lazy: `import somcolor` stays cheap for the CLI
    if name == "Colorizer":
        from .pipeline import Colorizer

        return Colorizer
    raise AttributeError(f"module 'somcolor' has no attribute {name!r}")
