"""The photo collections in ``data/raw``, listed and checked against their checksums.

Each collection keeps its ``SOURCES.md`` (provenance and terms) and a sha256 file.
Listing a collection verifies every file it returns; nothing here reaches the network.

=============  ==========================================  =====================
name           what                                        splits
=============  ==========================================  =====================
``bsds500``    Berkeley BSDS500 photos, 481x321             ``train``, ``test``
``opencountry``  the paper's Open Country scenes,           ``train``, ``test``
               **64x64 thumbnails only** (paper: 256x256)   (the MIT split)
``fruits100``  Fruits-360 apples, cherries, pears, 100x100  ``train``, ``test``
=============  ==========================================  =====================

Every collection's ``train`` split is further cut in two for choosing settings without
touching ``test``: ``val`` is every :data:`VAL_EVERY`-th train photo (sorted), ``fit``
the rest. A setting is chosen by training on ``fit`` and scoring on ``val``; the
bundled models then train on all of ``train`` and are reported on ``test``, once.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .exceptions import DataError

#: Splits :func:`image_paths` knows; ``fit`` and ``val`` partition ``train``.
SPLITS = ("train", "test", "fit", "val")
#: ``val`` is every VAL_EVERY-th photo of ``train`` (sorted by name), starting with the first.
VAL_EVERY = 5


@dataclass(frozen=True)
class Dataset:
    """Where a collection lives and how its files are checked."""

    name: str
    checksums: str  # sha256 file, relative to the collection folder
    base: str = "."  # folder the checksum file's names are relative to
    note: str = ""

    @property
    def root(self) -> Path:
        return paths.RAW_DIR / self.name


DATASETS = {
    d.name: d
    for d in (
        Dataset("bsds500", "SHA256SUMS.txt", note="BSDS500 train+test, 481x321 JPEGs"),
        Dataset(
            "opencountry",
            "SHA256SUMS_thumbs_64x64.txt",
            base="thumbs_64x64",
            note="64x64 thumbnails of the paper's 256x256 Open Country images",
        ),
        Dataset("fruits100", "SHA256SUMS.txt", note="Fruits-360 subset, 100x100"),
    )
}


def _get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}, expected one of {sorted(DATASETS)}") from None


def _read_checksums(ds: Dataset) -> dict[str, str]:
    sums_file = ds.root / ds.checksums
    if not sums_file.is_file():
        raise DataError(f"{ds.name}: checksum file {sums_file} is missing (run `make data`)")
    table = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            table[name.strip().lstrip("*")] = digest
    return table


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str) -> tuple[int, list[str], list[str]]:
    """Check every file of a collection: ``(n_ok, missing, mismatched)``."""
    ds = _get(name)
    ok, missing, bad = 0, [], []
    for rel, digest in _read_checksums(ds).items():
        f = ds.root / ds.base / rel
        if not f.is_file():
            missing.append(rel)
        elif sha256(f) != digest:
            bad.append(rel)
        else:
            ok += 1
    return ok, missing, bad


def _split_of(rel: str, splits: dict[str, str] | None) -> str:
    """The split of a file: its top folder, or its row in a manifest (``splits``)."""
    if splits is not None:
        return splits[Path(rel).name]
    return Path(rel).parts[0]


def _opencountry_splits() -> dict[str, str]:
    manifest = DATASETS["opencountry"].root / "original_256x256_manifest.tsv"
    with open(manifest, newline="") as fh:
        return {row["osr_filename"]: row["mit_split"] for row in csv.DictReader(fh, delimiter="\t")}


def image_paths(name: str, split: str | None = None) -> list[Path]:
    """The verified image files of a collection (one split of :data:`SPLITS`, or all),
    sorted.

    Raises
    ------
    DataError
        If a listed file is missing or its sha256 does not match.
    """
    ds = _get(name)
    table = _read_checksums(ds)
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {name}, expected one of {SPLITS}")
    splits = _opencountry_splits() if ds.name == "opencountry" else None
    top = "train" if split in ("fit", "val") else split
    chosen = [rel for rel in sorted(table) if top is None or _split_of(rel, splits) == top]
    if split == "val":
        chosen = chosen[::VAL_EVERY]
    elif split == "fit":
        chosen = [rel for i, rel in enumerate(chosen) if i % VAL_EVERY]
    out = []
    for rel in chosen:
        f = ds.root / ds.base / rel
        if not f.is_file():
            raise DataError(f"{name}: {f} is missing (run `make data`)")
        if sha256(f) != table[rel]:
            raise DataError(f"{name}: {f} does not match its sha256 in {ds.checksums}")
        out.append(f)
    return out
