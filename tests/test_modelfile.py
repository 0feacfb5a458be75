"""Tests for somcolor.modelfile: plain arrays plus JSON, never pickle."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from somcolor import modelfile
from somcolor.exceptions import ModelFormatError, SomcolorError


class _Trap:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make every unpickling entry point fail loudly for the duration of a test."""

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def arrays():
    return {
        "codebook": np.arange(18, dtype=np.float64).reshape(9, 2),
        "weights": np.ones((4, 3), dtype=np.float32),
        "classes": np.array([0, 3, 7], dtype=np.int64),
        "small": np.array([1, 2], dtype=np.uint8),
        "flags": np.array([True, False]),
    }


def write_raw_npz(path, **entries):
    with open(path, "wb") as fh:
        np.savez(fh, **entries)
    return path


def header(**meta):
    return np.array(json.dumps({"format": modelfile.FORMAT, "format_version": 1, **meta}))


# --- round trip -------------------------------------------------------------------------


def test_write_read_round_trip_keeps_arrays_dtypes_and_metadata(tmp_path, no_unpickling):
    meta = {"config": {"som_shape": [3, 3], "patch": 5}, "note": "é ✓", "seed": 0}
    path = modelfile.write(tmp_path / "model.npz", arrays(), meta)
    got, got_meta = modelfile.read(path)
    assert set(got) == set(arrays())
    for key, value in arrays().items():
        assert got[key].dtype == value.dtype
        np.testing.assert_array_equal(got[key], value)
    assert got_meta["format"] == modelfile.FORMAT
    assert got_meta["format_version"] == modelfile.FORMAT_VERSION
    assert {k: got_meta[k] for k in meta} == meta


def test_written_file_is_a_plain_npz_loadable_without_pickle(tmp_path):
    path = modelfile.write(tmp_path / "model.npz", arrays(), {})
    with np.load(path, allow_pickle=False) as npz:
        assert "metadata" in npz.files
        assert npz["metadata"].dtype.kind == "U"


def test_write_overwrites_by_default_and_refuses_when_asked(tmp_path):
    path = modelfile.write(tmp_path / "model.npz", arrays(), {"run": 1})
    modelfile.write(path, arrays(), {"run": 2})
    assert modelfile.read(path)[1]["run"] == 2
    with pytest.raises(SomcolorError, match="exists"):
        modelfile.write(path, arrays(), {"run": 3}, overwrite=False)
    assert modelfile.read(path)[1]["run"] == 2


def test_write_refuses_object_arrays_and_the_reserved_key(tmp_path):
    with pytest.raises(ValueError, match="only numbers"):
        modelfile.write(tmp_path / "m.npz", {"x": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(ValueError, match="only numbers"):
        modelfile.write(tmp_path / "m.npz", {"names": np.array(["a", "b"])}, {})
    with pytest.raises(ValueError, match="reserved"):
        modelfile.write(tmp_path / "m.npz", {"metadata": np.zeros(1)}, {})
    assert list(tmp_path.iterdir()) == []


# --- foreign and hostile files ------------------------------------------------------------


def test_the_trap_fires_when_unpickled(tmp_path):
    # Guards the tests below: if unpickling happened, the marker file would exist.
    marker = tmp_path / "unpickled"
    pickle.loads(pickle.dumps(_Trap(marker)))
    assert marker.exists()


def test_pickled_file_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.npz"
    with open(path, "wb") as fh:
        pickle.dump({"codebook": [1, 2, 3], "trap": _Trap(marker)}, fh)
    with pytest.raises(ModelFormatError, match="pickle") as excinfo:
        modelfile.read(path)
    assert str(path) in str(excinfo.value)
    assert not marker.exists()


def test_npz_holding_an_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = write_raw_npz(
        tmp_path / "model.npz",
        metadata=header(),
        codebook=np.zeros((2, 2)),
        evil=np.array([_Trap(marker)], dtype=object),
    )
    with pytest.raises(ModelFormatError, match="pickle"):
        modelfile.read(path)
    assert not marker.exists()


def test_hostile_files_are_refused_with_unpickling_disabled(tmp_path, no_unpickling):
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"a": 1}))
    obj = write_raw_npz(tmp_path / "obj.npz", metadata=header(), x=np.array([1, "a"], dtype=object))
    for path in (raw, obj):
        with pytest.raises(ModelFormatError, match="pickle"):
            modelfile.read(path)


def test_text_file_is_refused_as_not_a_model(tmp_path, no_unpickling):
    path = tmp_path / "model.npz"
    path.write_text("format = somcolor-model\n")
    with pytest.raises(ModelFormatError, match="not a somcolor model") as excinfo:
        modelfile.read(path)
    assert "pickle" not in str(excinfo.value)  # a text file is not a pickle


def test_bare_npy_array_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(ModelFormatError, match="bare .npy"):
        modelfile.read(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip"], ids=["empty", "bad-zip"])
def test_empty_or_damaged_file_is_refused(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match="not a somcolor model"):
        modelfile.read(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="no such model file"):
        modelfile.read(tmp_path / "absent.npz")
    with pytest.raises(ModelFormatError, match="no such model file"):
        modelfile.read(tmp_path)  # a folder


# --- the header -------------------------------------------------------------------------


def test_npz_without_metadata_is_refused(tmp_path):
    path = write_raw_npz(tmp_path / "model.npz", codebook=np.zeros((2, 2)))
    with pytest.raises(ModelFormatError, match="no metadata header"):
        modelfile.read(path)


def test_numeric_metadata_entry_is_refused(tmp_path):
    path = write_raw_npz(tmp_path / "model.npz", metadata=np.zeros(3))
    with pytest.raises(ModelFormatError, match="no metadata header"):
        modelfile.read(path)


def test_metadata_that_is_not_json_is_refused(tmp_path):
    path = write_raw_npz(tmp_path / "model.npz", metadata=np.array("{not json"))
    with pytest.raises(ModelFormatError, match="not JSON"):
        modelfile.read(path)


@pytest.mark.parametrize("meta", [{"format": "other-tool"}, {}, ["somcolor-model"]])
def test_other_formats_are_refused(tmp_path, meta):
    path = write_raw_npz(tmp_path / "model.npz", metadata=np.array(json.dumps(meta)))
    with pytest.raises(ModelFormatError, match="not a somcolor model"):
        modelfile.read(path)


def test_newer_format_version_is_refused(tmp_path):
    newer = modelfile.FORMAT_VERSION + 1
    path = write_raw_npz(tmp_path / "model.npz", metadata=header(format_version=newer))
    with pytest.raises(ModelFormatError, match="newer") as excinfo:
        modelfile.read(path)
    assert "upgrade" in str(excinfo.value)


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, None])
def test_invalid_format_version_is_refused(tmp_path, version):
    path = write_raw_npz(tmp_path / "model.npz", metadata=header(format_version=version))
    with pytest.raises(ModelFormatError, match="format_version"):
        modelfile.read(path)


def test_non_numeric_array_is_refused(tmp_path):
    path = write_raw_npz(tmp_path / "model.npz", metadata=header(), names=np.array(["a", "b"]))
    with pytest.raises(ModelFormatError, match="names"):
        modelfile.read(path)
