"""Errors raised by somcolor.

Every error a user can cause (a bad file, a bad option, a foreign model file) is a
:class:`SomcolorError`; the CLI prints its message on one line and exits non-zero.
"""


class SomcolorError(Exception):
    """A problem with the user's input that somcolor reports in one line."""


class ImageReadError(SomcolorError, OSError):
    """An image file is missing, unreadable, truncated, not an image, or too large."""


class ModelFormatError(SomcolorError, ValueError):
    """A file is not a somcolor model, is damaged, or was written by a newer format."""


class DataError(SomcolorError):
    """A bundled data set is missing files or fails its checksums."""


class MissingBackendError(SomcolorError, ImportError):
    """An optional back end (e.g. the CNNs' PyTorch) is not installed."""
