"""Tests for somcolor.datasets: the committed collections and their checksums."""

import hashlib

import pytest

from somcolor import datasets, paths
from somcolor.exceptions import DataError

# --- the real, committed data -------------------------------------------------------------

REAL_COUNTS = {"bsds500": (200, 200), "opencountry": (292, 118), "fruits100": (690, 260)}


@pytest.mark.parametrize(("name", "counts"), REAL_COUNTS.items())
def test_real_collection_has_the_documented_split_sizes(name, counts):
    train = datasets.image_paths(name, "train")
    test = datasets.image_paths(name, "test")
    assert (len(train), len(test)) == counts
    assert not set(train) & set(test)
    assert sorted(train + test) == datasets.image_paths(name)
    assert all(p.suffix == ".jpg" for p in train + test)


@pytest.mark.parametrize("name", REAL_COUNTS)
def test_real_collection_verifies_against_its_checksums(name):
    ok, missing, bad = datasets.verify(name)
    assert (missing, bad) == ([], [])
    assert ok == sum(REAL_COUNTS[name])


def test_unknown_collection_is_a_data_error():
    with pytest.raises(DataError, match="unknown data set 'imagenet'"):
        datasets.image_paths("imagenet")
    with pytest.raises(DataError, match="unknown data set"):
        datasets.verify("imagenet")


def test_unknown_split_is_a_data_error():
    with pytest.raises(DataError, match="unknown split 'validation'"):
        datasets.image_paths("bsds500", "validation")


@pytest.mark.parametrize("name", ["bsds500", "fruits100", "opencountry"])
def test_fit_and_val_partition_train_and_never_touch_test(name):
    train = datasets.image_paths(name, "train")
    fit, val = datasets.image_paths(name, "fit"), datasets.image_paths(name, "val")
    assert val == train[:: datasets.VAL_EVERY]
    assert sorted(fit + val) == train and not set(fit) & set(val)
    assert not set(fit + val) & set(datasets.image_paths(name, "test"))


# --- a small fake collection --------------------------------------------------------------


def _write_collection(root, files, sums_name="SHA256SUMS.txt", base="."):
    for rel, data in files.items():
        f = root / base / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    lines = [f"{hashlib.sha256(d).hexdigest()}  {rel}" for rel, d in files.items()]
    (root / sums_name).write_text("\n".join(lines) + "\n\n")


@pytest.fixture
def raw(tmp_path, monkeypatch):
    """A fake ``data/raw`` with a tiny ``fruits100`` collection."""
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path)
    files = {
        "train/apple/a1.jpg": b"apple one",
        "train/apple/a2.jpg": b"apple two",
        "test/pear/p1.jpg": b"pear one",
    }
    _write_collection(tmp_path / "fruits100", files)
    return tmp_path / "fruits100"


def test_fake_collection_lists_its_splits(raw):
    assert datasets.image_paths("fruits100", "train") == [
        raw / "train/apple/a1.jpg",
        raw / "train/apple/a2.jpg",
    ]
    assert datasets.image_paths("fruits100", "test") == [raw / "test/pear/p1.jpg"]
    assert datasets.verify("fruits100") == (3, [], [])


def test_modified_file_is_a_data_error_naming_it(raw):
    changed = raw / "train/apple/a2.jpg"
    changed.write_bytes(b"apple two, edited")
    with pytest.raises(DataError, match="sha256") as excinfo:
        datasets.image_paths("fruits100", "train")
    assert str(changed) in str(excinfo.value)
    assert datasets.verify("fruits100") == (2, [], ["train/apple/a2.jpg"])
    # The other split is unaffected.
    assert len(datasets.image_paths("fruits100", "test")) == 1


def test_missing_file_is_a_data_error(raw):
    gone = raw / "test/pear/p1.jpg"
    gone.unlink()
    with pytest.raises(DataError, match="missing") as excinfo:
        datasets.image_paths("fruits100")
    assert str(gone) in str(excinfo.value)
    assert datasets.verify("fruits100") == (2, ["test/pear/p1.jpg"], [])


def test_missing_checksum_file_is_a_data_error(raw):
    (raw / "SHA256SUMS.txt").unlink()
    with pytest.raises(DataError, match="checksum file"):
        datasets.image_paths("fruits100")


def test_opencountry_splits_follow_the_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RAW_DIR", tmp_path)
    root = tmp_path / "opencountry"
    files = {"opencountry_a.jpg": b"a", "opencountry_b.jpg": b"b", "opencountry_c.jpg": b"c"}
    _write_collection(root, files, "SHA256SUMS_thumbs_64x64.txt", base="thumbs_64x64")
    (root / "original_256x256_manifest.tsv").write_text(
        "osr_filename\tmit_split\n"
        "opencountry_a.jpg\ttest\n"
        "opencountry_b.jpg\ttrain\n"
        "opencountry_c.jpg\ttest\n"
    )
    thumbs = root / "thumbs_64x64"
    assert datasets.image_paths("opencountry", "train") == [thumbs / "opencountry_b.jpg"]
    assert datasets.image_paths("opencountry", "test") == [
        thumbs / "opencountry_a.jpg",
        thumbs / "opencountry_c.jpg",
    ]


def test_sha256_matches_hashlib(tmp_path):
    f = tmp_path / "blob"
    data = bytes(range(256)) * 5000  # more than one read block
    f.write_bytes(data)
    assert datasets.sha256(f) == hashlib.sha256(data).hexdigest()
