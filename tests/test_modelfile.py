"""Tests for somcolor.modelfile: plain arrays plus JSON, never pickle."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npformat

from somcolor import modelfile
from somcolor.exceptions import ModelFormatError, SomcolorError
from somcolor.paths import BUNDLED_MODELS, FAST_MODEL
from somcolor.predict import Predictor


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
        "som_codebook": np.arange(18, dtype=np.float64).reshape(9, 2),
        "mlp_coef_0": np.ones((4, 3), dtype=np.float32),
        "mlp_classes": np.array([0, 3, 7], dtype=np.int64),
        "net.conv1.bias": np.array([1, 2], dtype=np.uint8),
        "class_weights": np.array([True, False]),
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
        modelfile.write(tmp_path / "m.npz", {"som_mean": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(ValueError, match="only numbers"):
        modelfile.write(tmp_path / "m.npz", {"som_mean": np.array(["a", "b"])}, {})
    with pytest.raises(ValueError, match="not one a model file holds"):
        modelfile.write(tmp_path / "m.npz", {"names": np.zeros(2)}, {})
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
        som_codebook=np.zeros((2, 2)),
        som_mean=np.array([_Trap(marker)], dtype=object),
    )
    with pytest.raises(ModelFormatError, match="pickle"):
        modelfile.read(path)
    assert not marker.exists()


def test_hostile_files_are_refused_with_unpickling_disabled(tmp_path, no_unpickling):
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"a": 1}))
    obj = write_raw_npz(
        tmp_path / "obj.npz", metadata=header(), mlp_mean=np.array([1, "a"], dtype=object)
    )
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


def test_a_folder_is_refused_as_a_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="is a directory, not a model file"):
        modelfile.read(tmp_path)


# --- the header -------------------------------------------------------------------------


def test_npz_without_metadata_is_refused(tmp_path):
    path = write_raw_npz(tmp_path / "model.npz", som_codebook=np.zeros((2, 2)))
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
    path = write_raw_npz(tmp_path / "model.npz", metadata=header(), som_mean=np.array(["a", "b"]))
    with pytest.raises(ModelFormatError, match="som_mean"):
        modelfile.read(path)


# --- strict reading: sizes, entries and numbers checked before anything is read ----------


def npy_header(descr: str, shape: tuple) -> bytes:
    """An ``.npy`` header (format 1.0) declaring ``shape`` of ``descr``, without data."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def bundled_entries(**replace: bytes) -> dict[str, bytes]:
    """The bundled fast model's zip entries (``name.npy`` -> bytes), some replaced."""
    with zipfile.ZipFile(FAST_MODEL) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    return {**entries, **{f"{k}.npy": v for k, v in replace.items()}}


def write_zip(path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def with_metadata(path, change) -> Path:
    """The bundled fast model with ``change(meta)`` applied to its metadata (any JSON,
    NaN and Infinity included, as Python's json writes them)."""
    with zipfile.ZipFile(FAST_MODEL) as zf:
        meta = json.loads(str(np.load(io.BytesIO(zf.read("metadata.npy")))))
    change(meta)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    return write_zip(path, bundled_entries(metadata=buf.getvalue()))


def assert_damaged(path, *reasons: str) -> str:
    """``read`` and ``Predictor.from_file`` refuse ``path`` with one 'damaged model file' line."""
    for load in (modelfile.read, Predictor.from_file):
        with pytest.raises(ModelFormatError) as excinfo:
            load(path)
        message = str(excinfo.value)
        assert message.startswith(f"{path}: damaged model file (") and "\n" not in message
        assert any(reason in message for reason in reasons), message
    return message


def test_the_bundled_models_read_as_numpy_loads_them(tmp_path):
    for path in BUNDLED_MODELS.values():
        arrays, _ = modelfile.read(path)
        with np.load(path, allow_pickle=False) as npz:
            assert set(arrays) == set(npz.files) - {"metadata"}
            for key, value in arrays.items():
                assert value.dtype == npz[key].dtype and value.shape == npz[key].shape
                assert value.tobytes() == npz[key].tobytes(), key


def test_fortran_ordered_and_big_endian_arrays_round_trip(tmp_path):
    a = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    b = np.arange(6, dtype=">i4").reshape(2, 3)
    path = write_raw_npz(tmp_path / "m.npz", metadata=header(), mlp_coef_0=a, mlp_coef_1=b)
    got, _ = modelfile.read(path)
    np.testing.assert_array_equal(got["mlp_coef_0"], a)
    np.testing.assert_array_equal(got["mlp_coef_1"], b)


def test_an_array_declaring_more_than_its_entry_holds_is_refused_unread(tmp_path):
    # 10**11 float64 (745 GiB) declared in a file of a few KiB: numpy would allocate it.
    huge = npy_header("<f8", (10**11,))
    path = write_zip(tmp_path / "huge.npz", bundled_entries(mlp_mean=huge))
    assert path.stat().st_size < 64 << 10
    assert_damaged(path, "'mlp_mean' declares 800000000000 bytes")


def test_entries_inflating_far_beyond_the_file_are_refused_before_decompressing(tmp_path):
    # 8 MiB of zeros under a real entry name compress to a few KiB: a small zip bomb.
    zeros = npy_header("<f4", (2 << 20,)) + bytes(8 << 20)
    path = write_zip(tmp_path / "bomb.npz", bundled_entries(mlp_mean=zeros))
    assert path.stat().st_size * modelfile.MAX_INFLATION < 8 << 20
    assert_damaged(path, "inflate")


def test_entries_over_the_size_cap_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(modelfile, "MAX_MODEL_BYTES", 1 << 10)
    assert_damaged(write_zip(tmp_path / "m.npz", bundled_entries()), "more than the")


@pytest.mark.parametrize(
    "section, key, value, reason",
    [
        ("config", "work_size", float("inf"), "Infinity"),
        ("config", "work_size", float("nan"), "NaN"),
        ("config", "work_size", -float("inf"), "-Infinity"),
        ("mlp", "n_layers", float("inf"), "Infinity"),
        ("config", "smooth_eps", 10**30, "larger than 64 bits"),
    ],
)
def test_non_finite_or_huge_numbers_in_the_metadata_are_refused(
    tmp_path, section, key, value, reason
):
    path = with_metadata(tmp_path / "m.npz", lambda meta: meta[section].update({key: value}))
    assert_damaged(path, reason)


def test_a_float_overflowing_to_infinity_in_the_metadata_is_refused(tmp_path):
    path = with_metadata(tmp_path / "m.npz", lambda meta: meta["config"].update(work_size=1))
    entries = bundled_entries()
    with zipfile.ZipFile(path) as zf:
        text = str(np.load(io.BytesIO(zf.read("metadata.npy"))))
    buf = io.BytesIO()
    np.save(buf, np.array(text.replace('"work_size": 1', '"work_size": 1e400')))
    write_zip(path, {**entries, "metadata.npy": buf.getvalue()})
    assert_damaged(path, "1e400")


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("config", "work_size", 1.5),
        ("config", "work_size", True),
        ("config", "work_size", 2**40),
        ("config", "patch_size", -3),
        ("config", "som_shape", [3, "3"]),
        ("config", "temperature", "hot"),
        ("mlp", "n_layers", 2.0),
        ("mlp", "n_layers", 10**6),
        ("mlp", "n_layers", "3"),
    ],
)
def test_config_and_mlp_values_of_the_wrong_kind_or_range_are_refused(
    tmp_path, section, key, value
):
    path = with_metadata(tmp_path / "m.npz", lambda meta: meta[section].update({key: value}))
    with pytest.raises(ModelFormatError, match=f"damaged model file .*'{key}' is") as excinfo:
        Predictor.from_file(path)
    assert "\n" not in str(excinfo.value)


def test_an_unknown_entry_is_refused(tmp_path):
    path = write_zip(tmp_path / "m.npz", bundled_entries(extra=npy_header("<f8", (0,))))
    assert_damaged(path, "unknown entry 'extra.npy'")


def test_an_unused_mlp_layer_is_refused(tmp_path):
    layer = io.BytesIO()
    np.save(layer, np.zeros((2, 2), np.float32))
    path = write_zip(tmp_path / "m.npz", bundled_entries(mlp_coef_7=layer.getvalue()))
    with pytest.raises(ModelFormatError, match="extra arrays \\['mlp_coef_7'\\]"):
        Predictor.from_file(path)


def test_an_object_array_is_refused_from_its_header_alone(tmp_path, no_unpickling):
    # The header says "object"; the data after it is never read, let alone unpickled.
    path = write_zip(tmp_path / "m.npz", bundled_entries(mlp_mean=npy_header("|O", (3,)) + b"x"))
    assert_damaged(path, "'mlp_mean' holds pickled Python objects")


@pytest.mark.parametrize("descr", ["<U3", "<c16", [("a", "<f8")], "<M8[s]"])
def test_arrays_that_are_not_plain_numbers_are_refused_from_their_header(tmp_path, descr):
    entry = npy_header(descr, (0,))
    assert_damaged(write_zip(tmp_path / "m.npz", bundled_entries(mlp_mean=entry)), "'mlp_mean' is")


def test_deeply_nested_metadata_is_refused(tmp_path):
    path = with_metadata(tmp_path / "m.npz", lambda meta: meta.update(deep="[" * 10))
    entries = bundled_entries()
    with zipfile.ZipFile(path) as zf:
        text = str(np.load(io.BytesIO(zf.read("metadata.npy"))))
    buf = io.BytesIO()
    np.save(buf, np.array(text.replace('"[[[[[[[[[["', "[" * 100_000 + "]" * 100_000)))
    write_zip(path, {**entries, "metadata.npy": buf.getvalue()})
    assert_damaged(path, "metadata is not JSON")


# --- an adapted model's reference match ---------------------------------------------------
@pytest.fixture(scope="module")
def matched_file(tmp_path_factory):
    """A model adapted with a reference match, saved: its arrays and metadata."""
    from somcolor.pipeline import Colorizer

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30], rgb[:, 30:] = (200, 40, 40), (40, 60, 150)
    path = tmp_path_factory.mktemp("match") / "matched.npz"
    Colorizer.load(FAST_MODEL).adapt(rgb, match_sigma=0.3, epochs=1, pixels=300).save(path)
    return modelfile.read(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a, m: a.update(match_root=a["match_root"] * 3), "match_root outside 0..1"),
        (lambda a, m: a.update(match_L=a["match_L"] - 200), "match_L outside 0..100"),
        (lambda a, m: a.update(match_L=a["match_L"][:-1]), "match_root shape"),
        (lambda a, m: a.update(match_coef_0=a["match_coef_0"][:, :1]), "differ in shape"),
        (lambda a, m: a["match_intercept_0"].__setitem__(0, np.nan), "non-finite match"),
        (lambda a, m: a.pop("match_codebook"), "missing or extra arrays"),
        (lambda a, m: m.pop("match"), "metadata 'match'"),
        (lambda a, m: m["match"].update(sigma=0), "match sigma is 0"),
        (lambda a, m: m["match"].update(l_sigma=True), "match l_sigma is True"),
    ],
)
def test_a_damaged_reference_match_is_refused(matched_file, damage, message):
    from somcolor.model import Model

    arrays, meta = matched_file
    arrays = {k: np.array(v) for k, v in arrays.items()}
    meta = json.loads(json.dumps(meta))
    damage(arrays, meta)
    with pytest.raises(ModelFormatError, match=message):
        Model.from_arrays(arrays, meta)


def test_a_reference_match_loads_only_as_a_model(matched_file):
    from somcolor.model import Model

    arrays, meta = matched_file
    assert Model.from_arrays(arrays, meta).reference_match is not None
    with pytest.raises(ModelFormatError, match="load it with somcolor.model.Model"):
        Predictor.from_arrays(arrays, meta)
