"""CNN back ends (PyTorch, optional): the Fruits-360 autoencoder and a codebook CNN.

Two convolutional colorizers with the :class:`~somcolor.pipeline.Colorizer`'s surface
(``fit`` / ``predict_uv`` / ``colorize`` / ``save`` / ``load``), for comparison with
the SOM + MLP path:

* :class:`AutoencoderColorizer` (``kind = "cnn-ae"``): the Fruits-360 study's network,
  L in, the two chroma channels out, trained with MSE. The study worked in CIELAB and
  scaled a, b to -1..1; somcolor works in CIELUV and divides u, v by
  :data:`CHROMA_SCALE` (= 180: over the sRGB gamut ``|u|, |v| <= 175``), so its MSE is
  "on chroma scaled to -1..1", in LUV rather than Lab.
* :class:`CodeCNNColorizer` (``kind = "cnn-cls"``): a small fully convolutional net
  that predicts, per pixel, logits over a SOM chroma codebook (the same
  :class:`~somcolor.quantize.SOMQuantizer`), with a global branch (global average
  pooling of the deepest features, an MLP, broadcast and fused back at every
  position, as in Iizuka et al. 2016), trained with class-rebalanced cross-entropy
  (:func:`~somcolor.quantize.rebalance_weights`) and decoded with the annealed mean
  (:mod:`somcolor.decode`).

Both train on random square crops (``crop_size``, flipped left-right at random) of the
training photos, ``crops_per_image`` per photo per epoch, with Adam. The input L
(0..100) is scaled to -1..1. Any image size works at prediction: L is padded
(edge-replicated) to a multiple of 4 and the output cropped back.

torch is imported only inside functions (``require_torch``), so this module imports,
and the core package runs, without it. Weights are saved in somcolor's model file
(:mod:`somcolor.modelfile`: float32 arrays keyed ``net.<state_dict name>`` plus
JSON metadata with ``kind`` and the config), never pickled.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .. import modelfile
from .._version import __version__
from ..color import compose, luminance, rgb_to_luv, split_luv, to_float_rgb
from ..decode import DEFAULT_TEMPERATURE, get_decoder
from ..exceptions import MissingBackendError, ModelFormatError, SomcolorError
from ..io import read_image
from ..pipeline import ColorizeInfo
from ..quantize import SOMQuantizer, nearest_code, rebalance_weights

log = logging.getLogger(__name__)

#: The one-line hint given when torch is missing.
TORCH_HINT = "the CNN back ends need PyTorch: pip install -e '.[cnn]' (torch==2.13.0)"
#: u and v are divided by this to give the autoencoder's -1..1 target (sRGB: |u|, |v| <= 175).
CHROMA_SCALE = 180.0
#: Height and width are padded to a multiple of this (two 2x down- and up-samplings).
MULTIPLE = 4
DEVICES = ("auto", "cpu", "cuda")


# ---------------------------------------------------------------------------- torch
def require_torch():
    """The ``torch`` module, or a one-line :class:`MissingBackendError` with the install hint."""
    try:
        import torch
    except ImportError:
        raise MissingBackendError(TORCH_HINT) from None
    return torch


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU: error."""
    if device not in DEVICES:
        raise SomcolorError(f"device must be one of {DEVICES}, got {device!r}")
    torch = require_torch()
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise SomcolorError(
            f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA GPU; "
            "use --device cpu or auto"
        )
    return device


def normalise_L(L: np.ndarray) -> np.ndarray:
    """L in 0..100 -> -1..1 (float32), the networks' input.

    >>> normalise_L(np.array([0.0, 50.0, 100.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    return np.asarray(L, dtype=np.float32) / np.float32(50) - np.float32(1)


def _autoencoder(nn):
    """The Fruits-360 study's autoencoder: 17 555 parameters.

    5x5 conv 16, 5x5 conv 16, 2x2 max-pool, 5x5 conv 12, 5x5 conv 9 stride 2, 2x
    upsample, 3x3 conv 32, 2x upsample, 3x3 conv 2; ReLU after every hidden conv,
    tanh on the output (the -1..1 chroma). "Same" padding: an input whose sides are
    multiples of 4 gives an output of the same size.
    """
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 5, padding=2)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(16, 16, 5, padding=2)),
                ("relu2", nn.ReLU()),
                ("pool", nn.MaxPool2d(2)),
                ("conv3", nn.Conv2d(16, 12, 5, padding=2)),
                ("relu3", nn.ReLU()),
                ("conv4", nn.Conv2d(12, 9, 5, stride=2, padding=2)),
                ("relu4", nn.ReLU()),
                ("up1", nn.Upsample(scale_factor=2, mode="nearest")),
                ("conv5", nn.Conv2d(9, 32, 3, padding=1)),
                ("relu5", nn.ReLU()),
                ("up2", nn.Upsample(scale_factor=2, mode="nearest")),
                ("conv6", nn.Conv2d(32, 2, 3, padding=1)),
                ("tanh", nn.Tanh()),
            ]
        )
    )


@functools.cache
def _code_net_class():
    """The classification CNN's module class (defined on first use: it needs torch)."""
    torch = require_torch()
    nn, F = torch.nn, torch.nn.functional

    def conv3(cin, cout, stride=1, dilation=1):
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)

    class CodeNet(nn.Module):
        """L ``(B, 1, H, W)``, sides multiples of 4 -> code logits ``(B, n_codes, H, W)``.

        Low level at full and half resolution, mid level at a quarter (the last conv
        dilated), a global branch (mean over positions -> 2-layer MLP) concatenated
        with the mid-level features at every position and fused by a 1x1 conv, then
        back up to half resolution with the half-resolution features as a skip,
        logits at half resolution, bilinearly upsampled to the input size.
        """

        def __init__(self, n_codes: int, width: int):
            super().__init__()
            w = width
            self.low1 = conv3(1, w // 2)
            self.low2 = conv3(w // 2, w, stride=2)
            self.low3 = conv3(w, w)
            self.mid1 = conv3(w, 2 * w, stride=2)
            self.mid2 = conv3(2 * w, 2 * w)
            self.mid3 = conv3(2 * w, 2 * w, dilation=2)
            self.global1 = nn.Linear(2 * w, 2 * w)
            self.global2 = nn.Linear(2 * w, 2 * w)
            self.fuse = nn.Conv2d(4 * w, 2 * w, 1)
            self.up1 = conv3(2 * w, w)
            self.up2 = conv3(2 * w, w)
            self.out = nn.Conv2d(w, n_codes, 1)

        def forward(self, x):
            relu = F.relu
            x = relu(self.low1(x))
            skip = relu(self.low3(relu(self.low2(x))))  # 1/2
            x = relu(self.mid3(relu(self.mid2(relu(self.mid1(skip))))))  # 1/4
            g = relu(self.global2(relu(self.global1(x.mean(dim=(2, 3))))))
            g = g[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = relu(self.fuse(torch.cat([x, g], dim=1)))
            x = F.interpolate(relu(self.up1(x)), scale_factor=2, mode="nearest")
            x = self.out(relu(self.up2(torch.cat([x, skip], dim=1))))  # 1/2
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    return CodeNet


def _he_normal(net, generator) -> None:
    """He-normal weights (fan in, ReLU gain) and zero biases, drawn from ``generator``."""
    torch = require_torch()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            torch.nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- data
def _seeds(random_state) -> tuple[np.random.Generator, int, int]:
    """One seed -> independent streams: crops and pixel samples, torch init, the SOM."""
    ss = np.random.SeedSequence(random_state)
    data_ss, init_ss, som_ss = ss.spawn(3)
    return (
        np.random.default_rng(data_ss),
        int(init_ss.generate_state(1)[0]),
        int(som_ss.generate_state(1)[0] % (2**31 - 1)),
    )


def _read_training(images, progress=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """L ``(H, W)`` and UV ``(H, W, 2)`` (float32) of each training photo (arrays or paths)."""
    items = list(images)
    if not items:
        raise SomcolorError("no training images given")
    Ls, uvs = [], []
    for item in progress(items, desc="reading") if progress else items:
        image = read_image(item) if isinstance(item, str | Path) else item
        L, uv = split_luv(rgb_to_luv(to_float_rgb(image)).astype(np.float32, copy=False))
        Ls.append(np.ascontiguousarray(L))
        uvs.append(np.ascontiguousarray(uv))
    return Ls, uvs


def _batches(Ls, targets, size: int, per_image: int, batch_size: int, rng):
    """One epoch of random ``size`` x ``size`` crops (flipped at random), in batches.

    ``Ls`` holds normalised L ``(H, W)``, ``targets`` the matching ``(..., H, W)``
    arrays; yields ``(x (B, 1, size, size) float32, y (B, ..., size, size))``.
    """
    order = rng.permutation(np.repeat(np.arange(len(Ls)), per_image))
    for start in range(0, len(order), batch_size):
        xs, ys = [], []
        for i in order[start : start + batch_size]:
            H, W = Ls[i].shape
            r = int(rng.integers(0, H - size + 1))
            c = int(rng.integers(0, W - size + 1))
            x = Ls[i][r : r + size, c : c + size]
            y = targets[i][..., r : r + size, c : c + size]
            if rng.random() < 0.5:
                x, y = x[:, ::-1], y[..., ::-1]
            xs.append(x)
            ys.append(y)
        yield np.stack(xs)[:, None].astype(np.float32), np.stack(ys)


def _check_L(L) -> np.ndarray:
    arr = np.asarray(L, dtype=np.float32)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise SomcolorError(f"expected a luminance image of shape (H, W), got shape {arr.shape}")
    return arr


def _positive_int(name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise SomcolorError(f"{name} must be an integer >= {low}, got {value!r}")


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ModelFormatError(f"inconsistent model: {what}")


# ---------------------------------------------------------------------------- models
class _CNNColorizer(BaseEstimator):
    """What both CNN colorizers share: training loop, prediction, persistence.

    Subclasses set :attr:`kind` and implement ``_network``, ``_prepare`` (fit-time
    state and per-image targets), ``_target_tensor``, ``_loss``, ``_output`` (network
    output -> what ``_decode`` takes), ``_decode`` and the ``_arrays`` / ``_restore``
    pair for their extra fitted arrays.
    """

    kind = ""

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        _positive_int("epochs", self.epochs)
        _positive_int("crop_size", self.crop_size, low=2 * MULTIPLE)
        _positive_int("crops_per_image", self.crops_per_image)
        _positive_int("batch_size", self.batch_size)
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise SomcolorError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.device not in DEVICES:
            raise SomcolorError(f"device must be one of {DEVICES}, got {self.device!r}")

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of the network (of the fitted one, else of a fresh one)."""
        net = getattr(self, "net_", None)
        if net is None:
            self._check_params()
            net = self._network(require_torch())
        return int(sum(p.numel() for p in net.parameters()))

    # ------------------------------------------------------------------ training
    def fit(self, images, *, description: str = "", progress=None):
        """Train on color photos (arrays or paths); returns ``self``.

        ``progress`` wraps iterations like tqdm (``progress(iterable, desc=..., total=...)``).
        """
        self._check_params()
        torch = require_torch()
        device = resolve_device(self.device)
        rng, init_seed, som_seed = _seeds(self.random_state)
        t0 = time.perf_counter()
        Ls, uvs = _read_training(images, progress)
        smallest = min(min(L.shape) for L in Ls)
        size = min(int(self.crop_size), smallest) // MULTIPLE * MULTIPLE
        if size < 2 * MULTIPLE:
            raise SomcolorError(
                f"training images must be at least {2 * MULTIPLE} pixels on each side, "
                f"got one of {smallest}"
            )
        t1 = time.perf_counter()
        targets = self._prepare(Ls, uvs, rng, som_seed)
        del uvs
        Ls = [normalise_L(L).astype(np.float16) for L in Ls]
        t2 = time.perf_counter()

        net = self._network(torch)
        _he_normal(net, torch.Generator().manual_seed(init_seed))
        net.to(device)
        n_params = int(sum(p.numel() for p in net.parameters()))
        log.info("%s: %d parameters, training on %s", self.kind, n_params, device)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        losses, epoch_seconds = [], []
        epochs = range(int(self.epochs))
        for epoch in progress(epochs, desc="epochs", total=len(epochs)) if progress else epochs:
            te = time.perf_counter()
            net.train()
            total, count = 0.0, 0
            for xb, yb in _batches(
                Ls, targets, size, int(self.crops_per_image), int(self.batch_size), rng
            ):
                x = torch.from_numpy(xb).to(device)
                y = self._target_tensor(torch, yb).to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = self._loss(torch, net(x), y)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(xb)
                count += len(xb)
            if device == "cuda":
                torch.cuda.synchronize()
            epoch_seconds.append(round(time.perf_counter() - te, 3))
            losses.append(total / count)
            log.info(
                "epoch %d/%d: loss %.5f, %.1f s",
                epoch + 1,
                len(epochs),
                losses[-1],
                epoch_seconds[-1],
            )
        net.eval()
        self.net_ = net
        self.device_ = device
        self.training_ = {
            "description": description,
            "n_images": len(Ls),
            "crop_size": size,
            "crops_per_image": int(self.crops_per_image),
            "epochs": int(self.epochs),
            "loss": [round(v, 6) for v in losses],
            "epoch_seconds": epoch_seconds,
            "seconds": {
                "reading": round(t1 - t0, 3),
                "preparing": round(t2 - t1, 3),
                "training": round(sum(epoch_seconds), 3),
            },
            "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(),
            "n_parameters": n_params,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self

    # ------------------------------------------------------------------ inference
    def _forward(self, L: np.ndarray) -> np.ndarray:
        """The network's (post-processed) output ``(C, H, W)`` for L ``(H, W)``, any size."""
        torch = require_torch()
        H, W = L.shape
        x = torch.from_numpy(normalise_L(L))[None, None]
        pad_h, pad_w = (-H) % MULTIPLE, (-W) % MULTIPLE
        if pad_h or pad_w:
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        with torch.inference_mode():
            out = self._output(torch, self.net_(x.to(self.device_)))
        return out[0, :, :H, :W].float().cpu().numpy()

    def predict_uv(self, L: np.ndarray, *, return_codes: bool = False):
        """Predicted chroma ``(H, W, 2)`` float32 for a luminance image ``(H, W)`` (0..100).

        With ``return_codes`` also returns the most probable code per pixel
        (``(H, W)``), or None for a network without codes.
        """
        check_is_fitted(self, "net_")
        uv, codes = self._decode(self._forward(_check_L(L)))
        return (uv, codes) if return_codes else uv

    def colorize(self, image, *, return_info: bool = False):
        """Colorize an image (gray, RGB or RGBA array, or a path) -> RGB uint8 ``(H, W, 3)``.

        Color inputs are first reduced to their luminance. With ``return_info`` also
        returns a :class:`~somcolor.pipeline.ColorizeInfo`.
        """
        check_is_fitted(self, "net_")
        t0 = time.perf_counter()
        if isinstance(image, str | Path):
            image = read_image(image)
        L = luminance(image).astype(np.float32, copy=False)
        out, clipped = compose(L, self.predict_uv(L))
        if not return_info:
            return out
        return out, ColorizeInfo(L.shape[0], L.shape[1], clipped, time.perf_counter() - t0)

    # ------------------------------------------------------------------ persistence
    def _config(self) -> dict:
        params = self.get_params()
        params.pop("device")  # where to run is the loader's choice; training_ records it
        return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}

    def save(self, path, *, overwrite: bool = True) -> Path:
        """Write the model as float32 arrays + JSON metadata (no pickle), atomically."""
        check_is_fitted(self, "net_")
        torch = require_torch()
        arrays = {
            f"net.{k}": v.detach().cpu().numpy().astype(np.float32)
            for k, v in self.net_.state_dict().items()
        }
        arrays.update(self._arrays())
        metadata = {
            "kind": self.kind,
            "config": self._config(),
            "n_parameters": self.n_parameters,
            "training": self.training_,
            "somcolor_version": __version__,
            "torch_version": torch.__version__,
        }
        return modelfile.write(path, arrays, metadata, overwrite=overwrite)

    @classmethod
    def load(cls, path, *, device: str = "auto"):
        """Read a model written by :meth:`save`; runs no code from the file.

        Raises
        ------
        ModelFormatError
            If the file is not a somcolor model of this kind, or is damaged or newer.
        MissingBackendError
            If torch is not installed.
        """
        arrays, meta = modelfile.read(path)
        kind = meta.get("kind", "som")
        if kind != cls.kind:
            raise ModelFormatError(f"{path}: a {kind!r} model, not {cls.kind!r}")
        torch = require_torch()
        try:
            return cls._from_arrays(torch, arrays, meta, device)
        except ModelFormatError as exc:
            raise ModelFormatError(f"{path}: damaged model file ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise ModelFormatError(
                f"{path}: damaged model file ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def _from_arrays(cls, torch, arrays: dict, meta: dict, device: str):
        _expect(isinstance(meta.get("config"), dict), "metadata 'config' must be an object")
        _expect(isinstance(meta.get("training", {}), dict), "metadata 'training' is not an object")
        modelfile.check_numbers(meta["config"])
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
        model = cls(**config, device=device)
        try:
            model._check_params()
        except SomcolorError as exc:
            raise ModelFormatError(str(exc)) from None
        model._restore(arrays)
        # The architecture's shapes first, on the meta device (no memory): only a network
        # the file holds every weight of is then built.
        with torch.device("meta"):
            expected = model._network(torch).state_dict()
        stored = {k[len("net.") :]: v for k, v in arrays.items() if k.startswith("net.")}
        _expect(set(stored) == set(expected), "network weights do not match the architecture")
        for name, value in stored.items():
            _expect(value.shape == tuple(expected[name].shape), f"shape of {name} {value.shape}")
            _expect(bool(np.all(np.isfinite(value))), f"non-finite weights in {name}")
        net = model._network(torch)
        net.load_state_dict(
            {
                k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                for k, v in stored.items()
            }
        )
        model.device_ = resolve_device(device)
        model.net_ = net.to(model.device_).eval()
        model.training_ = meta.get("training", {})
        model.metadata_ = meta
        return model


class AutoencoderColorizer(_CNNColorizer):
    """The Fruits-360 study's convolutional autoencoder (17 555 parameters), in LUV.

    L in, u and v out, both scaled to -1..1 (u, v divided by :data:`CHROMA_SCALE`);
    MSE loss, Adam, He-normal initialisation. The study used Lab with a, b / 128.

    Parameters
    ----------
    epochs : int, default=5
        Passes over the training photos.
    crop_size : int, default=96
        Side of the random square crops trained on (reduced to the smallest photo's
        side, and to a multiple of 4).
    crops_per_image : int, default=2
        Crops drawn from each photo per epoch.
    batch_size : int, default=16
    learning_rate : float, default=1e-3
        Adam's step size (Keras' default, as in the study).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train and predict; ``auto`` takes a CUDA GPU when torch sees one.
    random_state : int or None, default=None
        The one seed for the initial weights and the crops.

    Attributes
    ----------
    net_ : torch.nn.Module
    device_ : str
        The device the network is on.
    training_ : dict
        Per-epoch loss (MSE on the -1..1 chroma) and seconds, device, crop size.
    """

    kind = "cnn-ae"

    def __init__(
        self,
        *,
        epochs=5,
        crop_size=96,
        crops_per_image=2,
        batch_size=16,
        learning_rate=1e-3,
        device="auto",
        random_state=None,
    ):
        self.epochs = epochs
        self.crop_size = crop_size
        self.crops_per_image = crops_per_image
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.random_state = random_state

    def _network(self, torch):
        return _autoencoder(torch.nn)

    def _prepare(self, Ls, uvs, rng, som_seed):
        scale = np.float32(CHROMA_SCALE)
        return [np.clip(np.moveaxis(uv, -1, 0) / scale, -1, 1).astype(np.float16) for uv in uvs]

    def _target_tensor(self, torch, y):
        return torch.from_numpy(y.astype(np.float32))

    def _loss(self, torch, output, target):
        return torch.nn.functional.mse_loss(output, target)

    def _output(self, torch, output):
        return output

    def _decode(self, out: np.ndarray):
        return np.moveaxis(out, 0, -1) * np.float32(CHROMA_SCALE), None

    def _arrays(self) -> dict:
        return {}

    def _restore(self, arrays: dict) -> None:
        pass


class CodeCNNColorizer(_CNNColorizer):
    """A fully convolutional classifier over a SOM chroma codebook, with a global branch.

    A SOM (:class:`~somcolor.quantize.SOMQuantizer`) is trained on UV pixels sampled
    from the training photos; every training pixel's label is its nearest code. The
    network predicts per-pixel logits over the codes; the loss is cross-entropy with
    each pixel weighted by its code's rebalancing weight
    (:func:`~somcolor.quantize.rebalance_weights`, prior mixed with uniform by
    ``rebalance_lambda``); the probabilities are decoded to UV with ``decoder``.

    Parameters
    ----------
    som_shape : tuple of int, default=(10, 10)
        SOM map size; ``rows * cols`` codes (= output channels).
    width : int, default=32
        Channels of the half-resolution features; the quarter-resolution and global
        features have twice as many (163 204 parameters with 100 codes).
    pixels_per_image : int, default=2000
        UV pixels sampled per photo for the SOM and the code prior.
    som_iterations, som_samples : int, default=20000
        SOM training steps and the size of the UV subsample it trains on.
    rebalance_lambda : float, default=0.5
        Weight of the uniform distribution in the rebalancing prior (1: no rebalancing).
    decoder : {"argmax", "mean", "annealed"}, default="annealed"
    temperature : float, default=0.38
        The annealed mean's temperature.
    epochs, crop_size, crops_per_image, batch_size, learning_rate, device, random_state
        As in :class:`AutoencoderColorizer`; the seed also drives the pixel sample and the SOM.

    Attributes
    ----------
    quantizer_ : SOMQuantizer
    classes_ : ndarray of shape (n_codes,)
        The code of each output channel (all of them: ``arange(n_codes)``).
    class_weights_ : ndarray of shape (n_codes,)
        Loss weight of each code (codes absent from the sample get the largest).
    net_, device_, training_
        As in :class:`AutoencoderColorizer`.
    """

    kind = "cnn-cls"

    def __init__(
        self,
        *,
        som_shape=(10, 10),
        width=32,
        pixels_per_image=2000,
        som_iterations=20000,
        som_samples=20000,
        rebalance_lambda=0.5,
        decoder="annealed",
        temperature=DEFAULT_TEMPERATURE,
        epochs=5,
        crop_size=96,
        crops_per_image=2,
        batch_size=16,
        learning_rate=1e-3,
        device="auto",
        random_state=None,
    ):
        self.som_shape = som_shape
        self.width = width
        self.pixels_per_image = pixels_per_image
        self.som_iterations = som_iterations
        self.som_samples = som_samples
        self.rebalance_lambda = rebalance_lambda
        self.decoder = decoder
        self.temperature = temperature
        self.epochs = epochs
        self.crop_size = crop_size
        self.crops_per_image = crops_per_image
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        shape = tuple(self.som_shape)
        if len(shape) != 2 or not all(isinstance(s, int | np.integer) and s >= 1 for s in shape):
            raise SomcolorError(f"som_shape must be two positive integers, got {self.som_shape!r}")
        if shape[0] * shape[1] < 2:
            raise SomcolorError(f"som_shape must give at least 2 codes, got {self.som_shape!r}")
        _positive_int("width", self.width, low=2)
        if self.width % 2:
            raise SomcolorError(f"width must be even, got {self.width!r}")
        _positive_int("pixels_per_image", self.pixels_per_image)
        _positive_int("som_iterations", self.som_iterations)
        _positive_int("som_samples", self.som_samples)
        if not 0 <= self.rebalance_lambda <= 1:
            raise SomcolorError(f"rebalance_lambda must be in 0..1, got {self.rebalance_lambda!r}")
        get_decoder(self.decoder)
        if not self.temperature > 0:
            raise SomcolorError(f"temperature must be positive, got {self.temperature!r}")

    @property
    def n_codes(self) -> int:
        rows, cols = self.som_shape
        return int(rows) * int(cols)

    def _network(self, torch):
        return _code_net_class()(self.n_codes, int(self.width))

    def _prepare(self, Ls, uvs, rng, som_seed):
        sample = []
        for uv in uvs:
            flat = uv.reshape(-1, 2)
            take = rng.choice(len(flat), size=min(len(flat), self.pixels_per_image), replace=False)
            sample.append(flat[take])
        sample = np.concatenate(sample)
        self.quantizer_ = SOMQuantizer(
            som_shape=tuple(int(s) for s in self.som_shape),
            n_iterations=int(self.som_iterations),
            max_samples=int(self.som_samples),
            random_state=som_seed,
        ).fit(sample)
        codebook = self.quantizer_.codebook_
        labels = self.quantizer_.labels_
        if len(np.unique(labels)) < 2:
            raise SomcolorError(
                "the training photos give only one color code: use more varied photos"
            )
        weights = rebalance_weights(labels, codebook, lam=float(self.rebalance_lambda))
        per_code = np.full(self.n_codes, weights.max())
        per_code[labels] = weights
        self.class_weights_ = per_code.astype(np.float32)
        self.classes_ = np.arange(self.n_codes)
        dtype = np.uint8 if self.n_codes <= 256 else np.int32
        return [
            nearest_code(uv.reshape(-1, 2), codebook).astype(dtype).reshape(uv.shape[:2])
            for uv in uvs
        ]

    def _target_tensor(self, torch, y):
        return torch.from_numpy(y.astype(np.int64))

    def _loss(self, torch, output, target):
        weights = torch.as_tensor(self.class_weights_, device=output.device)
        ce = torch.nn.functional.cross_entropy(output, target, reduction="none")
        return (ce * weights[target]).mean()

    def _output(self, torch, output):
        return torch.softmax(output, dim=1)

    def _decode(self, proba: np.ndarray):
        K, H, W = proba.shape
        flat = np.ascontiguousarray(proba.reshape(K, -1).T)
        decode = get_decoder(self.decoder)
        uv = decode(flat, self.classes_, self.quantizer_.codebook_, self.temperature)
        codes = self.classes_[np.argmax(flat, axis=1)].reshape(H, W)
        return uv.astype(np.float32).reshape(H, W, 2), codes

    def _arrays(self) -> dict:
        q = self.quantizer_
        return {
            "som_codebook": q.codebook_,
            "som_mean": q.mean_,
            "som_scale": q.scale_,
            "class_weights": self.class_weights_,
        }

    def _restore(self, arrays: dict) -> None:
        codebook = np.asarray(arrays["som_codebook"], dtype=np.float64)
        _expect(codebook.shape == (self.n_codes, 2), f"codebook shape {codebook.shape}")
        q = SOMQuantizer(som_shape=tuple(int(s) for s in self.som_shape))
        q.codebook_ = codebook
        q.mean_ = np.asarray(arrays["som_mean"], dtype=np.float64)
        q.scale_ = np.asarray(arrays["som_scale"], dtype=np.float64)
        q.n_features_in_ = 2
        _expect(q.mean_.shape == (2,) and q.scale_.shape == (2,), "SOM scaling shape")
        weights = np.asarray(arrays["class_weights"], dtype=np.float32)
        _expect(weights.shape == (self.n_codes,), f"class weights shape {weights.shape}")
        for arr in (q.codebook_, q.mean_, q.scale_, weights):
            _expect(bool(np.all(np.isfinite(arr))), "non-finite codebook or weights")
        self.quantizer_ = q
        self.class_weights_ = weights
        self.classes_ = np.arange(self.n_codes)
