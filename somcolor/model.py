"""A trained model as users call it: automatic colour, plus guidance on top.

:class:`Model` is a :class:`~somcolor.predict.Predictor` (the automatic path, and the
one prior every path starts from, :meth:`~somcolor.predict.Predictor.prior`) with the
guidance composed over it: colour hints (:mod:`somcolor.guide`: :meth:`Model.hint_session`,
:meth:`Model.suggest`) and colour from reference photos (:mod:`somcolor.adapt`:
:meth:`Model.adapt`). ``Model.colorize(image, hints=, scribbles=, reference=)`` is the
entry point the CLI, the video layer and the web page call; with no guidance it is the
automatic output byte for byte.

Data flow: ``predict`` (prediction) -> ``guide``, ``adapt`` (guidance) -> ``model``
(composition) -> ``cli``, ``video``, ``web``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from . import guide
from .color import check_image, luminance
from .features import features_at
from .io import read_image
from .predict import Predictor

__all__ = ["Model"]


class Model(Predictor):
    """A trained SOM + MLP model: :class:`~somcolor.predict.Predictor` plus colour hints
    and reference photos.

    Examples
    --------
    >>> from somcolor.paths import DEFAULT_MODEL
    >>> model = Model.from_file(DEFAULT_MODEL)
    >>> gray = np.full((6, 8), 128, np.uint8)
    >>> bool((model.colorize(gray, hints=[]) == model.colorize(gray)).all())
    True
    """

    #: Set on a model returned by :meth:`adapt` (:class:`~somcolor.adapt.ReferenceMatch`):
    #: its adapted colours where the photo looks like the references, the starting
    #: model's elsewhere. None: the model's own colours everywhere.
    reference_match = None

    def _work_prediction(self, L_work: np.ndarray, proba: bool):
        """The working chroma; with a reference match, blended with the starting model's
        by the likeness of each pixel to the references (the prior every path uses)."""
        uv, top, probabilities = super()._work_prediction(L_work, proba)
        match = self.reference_match
        if match is None:
            return uv, top, probabilities
        base = copy.copy(match.base)
        base.config = self.config  # the decoder and temperature set on this model
        weight = self._match_weights(base, L_work)
        if weight.min() >= 1:  # the photo looks like the references: their colours
            return uv, top, probabilities
        uv_base, _ = base._work_uv(L_work)
        return uv_base + weight[:, None] * (uv - uv_base), top, probabilities

    #: The reference match's weights are computed at every MATCH_STEP-th working pixel in
    #: each direction and repeated over the square (the model's smoothing follows).
    MATCH_STEP = 4

    def _match_weights(self, base: Predictor, L_work: np.ndarray) -> np.ndarray:
        """The match's weights ``(h * w,)`` of a working-size L: the starting model's
        probabilities and the likeness at a grid of every :attr:`MATCH_STEP`-th pixel,
        repeated over each ``MATCH_STEP`` square."""
        h, w = L_work.shape
        step = self.MATCH_STEP
        rows, cols = np.arange(0, h, step), np.arange(0, w, step)
        index = (rows[:, None] * w + cols[None, :]).ravel()
        X = features_at(L_work, index, base.feature_spec)
        proba = np.empty((len(index), len(base.classes)), np.float32)
        base._forward(X, proba)
        small = self.reference_match.weights(proba, L_work.ravel()[index])
        grid = small.reshape(len(rows), len(cols))
        return np.repeat(np.repeat(grid, step, axis=0), step, axis=1)[:h, :w].ravel()

    def _attach_match(self, match: dict) -> None:
        """The reference match of a model file (checked by
        :func:`somcolor.modelfile.reference_match`)."""
        from .adapt import ReferenceMatch

        base = Predictor(
            config=self.config,
            codebook=match["codebook"],
            classes=self.classes,
            mean=self.mean,
            scale=self.scale,
            coefs=match["coefs"],
            intercepts=match["intercepts"],
            out_activation=self.out_activation,
            som_mean=self.som_mean,
            som_scale=self.som_scale,
        )
        self.reference_match = ReferenceMatch(
            base,
            match["root"],
            match["L"],
            match["sigma"],
            match["l_sigma"],
            match["low"],
            match["high"],
        )

    def model_arrays(self) -> dict[str, np.ndarray]:
        """The model as named plain arrays (what a model file stores), its reference
        match's included (:meth:`match_metadata` gives the metadata that goes with them)."""
        arrays = super().model_arrays()
        match = self.reference_match
        if match is not None:
            arrays.update(match_codebook=match.base.codebook, match_root=match.root)
            arrays["match_L"] = match.L
            for i, (W, b) in enumerate(zip(match.base.coefs, match.base.intercepts, strict=True)):
                arrays[f"match_coef_{i}"] = W
                arrays[f"match_intercept_{i}"] = b
        return arrays

    def match_metadata(self) -> dict:
        """``{"match": {"sigma", "l_sigma", "low", "high"}}`` for a model file, or ``{}``
        without a match."""
        match = self.reference_match
        if match is None:
            return {}
        keys = ("sigma", "l_sigma", "low", "high")
        return {"match": {k: float(getattr(match, k)) for k in keys}}

    def colorize(
        self, image, *, hints=None, scribbles=None, reference=None, return_info: bool = False
    ):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance, so a color photo is
        re-colorized. With ``return_info`` also returns a
        :class:`~somcolor.predict.ColorizeInfo`.

        ``reference`` is a colour photo (array or path) or a list of them: the model is
        first adapted to them (:meth:`adapt`, seed 0), then colours the image (with the
        hints, if any, on top). To colour several images from the same references,
        call :meth:`adapt` once and colour with the model it returns.

        ``hints`` are user colour points: a list of dicts ``{"x", "y", "color"[,
        "radius"]}`` or ``(x, y, (r, g, b))`` tuples (``x`` the column, ``y`` the row in
        pixels of the input; colours ``"#rrggbb"`` or 0..255 triples), or a
        :class:`somcolor.guide.Hints`; ``scribbles`` an RGBA array of the input's size
        whose opaque pixels are colour strokes. They are spread edge-aware with the
        model's prediction as the prior, through a one-off :meth:`hint_session` (use
        that to add hints one at a time). With no hints (None or empty) the output is
        exactly the automatic one.

        Raises
        ------
        SomcolorError
            A bad hint (outside the image, a bad colour, unknown keys) or scribbles of
            another size, in one line naming the entry.
        """
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        image = np.asarray(image)
        shape = check_image(image).shape[:2]
        if reference is not None:
            out = self.adapt(reference).colorize(
                image, hints=hints, scribbles=scribbles, return_info=return_info
            )
            if return_info:
                out[1].seconds = time.perf_counter() - t0
            return out
        if hints is not None or scribbles is not None:
            given = guide.as_hints(hints, scribbles, shape)
            if len(given):
                out, info = self.hint_session(image).colorize(given, return_info=True)
                info.seconds = time.perf_counter() - t0
                return (out, info) if return_info else out
        return super().colorize(image, return_info=return_info)

    def _rows_are_the_prior(self, shape: tuple[int, int]) -> bool:
        """A reference match blends two predictions in the prior: never the rows' path."""
        return self.reference_match is None and super()._rows_are_the_prior(shape)

    def adapt(self, references, *, random_state=0, **options) -> Model:
        """A new model fitted to reference colour photos (arrays or paths), starting
        from this one, which is not changed: see :func:`somcolor.adapt.adapt` (its
        ``options`` are the fields of :class:`~somcolor.adapt.AdaptParams`)."""
        from .adapt import adapt

        return adapt(self, references, random_state=random_state, **options)

    def hint_session(self, image, params: guide.GuideParams | None = None) -> guide.HintSession:
        """An image (gray, RGB or RGBA array, or a path) made ready for colour hints
        (:class:`somcolor.guide.HintSession`): the model's prior computed once, so each
        new set of hints only re-solves."""
        if isinstance(image, str | Path):
            image = read_image(image)
        L = luminance(check_image(np.asarray(image))).astype(np.float32, copy=False)
        return guide.HintSession(self, L, params)

    def suggest(
        self, image, x: float, y: float, k: int = 12, *, model_only: bool = False
    ) -> list[guide.Suggestion]:
        """The colours offered at column ``x``, row ``y`` of the input, at most ``k``:
        ``[Suggestion("#rrggbb", probability, source), ...]``, the model's most probable
        first (``source`` ``"model"``), then a palette that covers the gamut there
        (``"palette"``, probability None), each shown at that pixel's lightness
        (:meth:`somcolor.guide.HintSession.suggest`, :func:`somcolor.guide.suggest`;
        ``model_only``: the model's ``k`` most probable alone)."""
        return self.hint_session(image).suggest(x, y, k, source="--at", model_only=model_only)
