"""Model back ends, and the loader that picks one by the model file's ``kind``.

``som`` is the core SOM + MLP :class:`~somcolor.pipeline.Colorizer`. The CNN back
ends (:mod:`somcolor.backends.cnn`) need PyTorch, installed with the ``cnn`` extra
(``pip install -e '.[cnn]'``, which pins ``torch==2.13.0``); torch is imported only
when a CNN is built or loaded, so the core runs without it.

>>> from somcolor.paths import DEFAULT_MODEL
>>> model_kind(DEFAULT_MODEL)
'som'
"""

from __future__ import annotations

from .. import modelfile
from ..exceptions import ModelFormatError, SomcolorError

#: Every back end ``somcolor train --backend`` offers.
BACKENDS = ("som", "cnn-ae", "cnn-cls")
#: The model classes of the CNN back ends, by the ``kind`` written in their files.
CNN_CLASSES = {"cnn-ae": "AutoencoderColorizer", "cnn-cls": "CodeCNNColorizer"}


def cnn_class(kind: str):
    """The CNN model class for ``kind`` (``cnn-ae`` or ``cnn-cls``); needs torch."""
    if kind not in CNN_CLASSES:
        raise SomcolorError(f"unknown CNN back end {kind!r}, expected one of {list(CNN_CLASSES)}")
    from . import cnn

    cnn.require_torch()
    return getattr(cnn, CNN_CLASSES[kind])


def model_kind(path) -> str:
    """The back end that wrote a model file: ``som`` (no ``kind`` in the file) or a CNN kind."""
    _, meta = modelfile.read(path)
    kind = meta.get("kind", "som")
    if kind not in BACKENDS:
        raise ModelFormatError(f"{path}: unknown model kind {kind!r}, expected one of {BACKENDS}")
    return kind


def load_model(path, *, device: str = "auto"):
    """Load any somcolor model file: a :class:`~somcolor.pipeline.Colorizer` for SOM
    files (torch is not imported), else the CNN class its ``kind`` names.

    ``device`` (``auto``, ``cpu`` or ``cuda``) applies to CNN models only.
    """
    kind = model_kind(path)
    if kind == "som":
        from ..pipeline import Colorizer

        return Colorizer.load(path)
    return cnn_class(kind).load(path, device=device)
