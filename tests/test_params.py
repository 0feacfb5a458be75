"""Tests for somcolor.params: the Colorizer's parameters declared once, and all that
is derived from the table (signature, model-file defaults, validation, CLI options)."""

import ast
import inspect
import re

import pytest

from somcolor import params
from somcolor.cli import CNN_CLS_DEFAULTS, SOM_TRAIN_OPTIONS, build_parser
from somcolor.decode import DECODERS
from somcolor.exceptions import SomcolorError
from somcolor.params import BY_NAME, DEFAULTS, INFERENCE_PARAMS, PARAMS, check_params
from somcolor.pipeline import Colorizer


def test_the_colorizer_signature_is_the_table_in_order_with_its_defaults():
    signature = inspect.signature(Colorizer.__init__).parameters
    names = [n for n in signature if n != "self"]
    assert names == [p.name for p in PARAMS]
    assert {n: signature[n].default for n in names} == DEFAULTS


def test_the_colorizer_docstring_states_the_tables_defaults():
    doc = Colorizer.__doc__
    documented = {}
    for names, default in re.findall(r"^    (\w+(?:, \w+)*) : .*default=(.+)$", doc, re.M):
        for name in names.split(", "):
            documented[name] = ast.literal_eval(default)
    assert documented == DEFAULTS


def test_inference_params_are_those_marked_in_the_table_and_all_are_checked():
    assert INFERENCE_PARAMS == (
        "decoder",
        "temperature",
        "smooth_radius",
        "smooth_eps",
        "work_size",
    )
    assert all(BY_NAME[name].check is not None for name in INFERENCE_PARAMS)
    check_params(DEFAULTS)  # the defaults are allowed


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("decoder", "median", "unknown decoder 'median', expected one of"),
        ("temperature", 0, "temperature must be positive, got 0"),
        ("smooth_radius", 1.5, "smooth_radius must be in 0..1, got 1.5"),
        ("smooth_eps", -1.0, "smooth_eps must be positive, got -1.0"),
        ("work_size", 4, "work_size must be None or at least 8 pixels, got 4"),
    ],
)
def test_a_bad_inference_parameter_is_one_line_saying_what_was_expected(name, value, message):
    with pytest.raises(SomcolorError, match=re.escape(message)) as excinfo:
        check_params({**DEFAULTS, name: value})
    assert "\n" not in str(excinfo.value)


def test_the_tuple_params_are_those_a_model_file_stores_as_lists():
    assert params.TUPLE_PARAMS == ("som_shape", "hidden_layer_sizes", "scales")


def test_the_decoder_choices_are_the_registry():
    assert BY_NAME["decoder"].choices == tuple(DECODERS)


def test_train_offers_every_parameter_with_an_option_and_shows_its_default():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {a.option_strings[0]: a for a in train._actions if a.option_strings}
    for p in PARAMS:
        if p.flag is None:
            continue
        action = options[p.flag]
        if p.choices is not None:
            assert list(action.choices) == list(p.choices)
        if not (p.default is None or p.default == () or isinstance(p.default, bool)):
            assert f"(default {p.show(p.default)}" in action.help
    assert set(SOM_TRAIN_OPTIONS.values()) == {
        p.name for p in PARAMS if p.flag and p.name != "som_shape"
    }


def test_the_cli_knows_the_cnn_classifiers_defaults():
    cnn = pytest.importorskip("somcolor.backends.cnn")
    signature = inspect.signature(cnn.CodeCNNColorizer.__init__).parameters
    for name, value in CNN_CLS_DEFAULTS.items():
        assert signature[name].default == value != DEFAULTS[name]


@pytest.mark.parametrize("text", ["50,50", "50+50"])
def test_hidden_layers_read_with_either_separator(text):
    assert params.parse_hidden(text) == (50, 50)


@pytest.mark.parametrize("text", ["", "a,b", "50,,50", "0", "50,-1"])
def test_bad_hidden_layers_say_what_was_expected(text):
    with pytest.raises(ValueError, match="expected layer sizes like 50,50"):
        params.parse_hidden(text)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (params.parse_odd, "4", "expected a positive odd integer, got '4'"),
        (params.parse_positive, "0", "expected a positive integer, got '0'"),
        (params.parse_work_size, "4", "expected 0, full or at least 8 pixels, got '4'"),
        (params.parse_positive_float, "nan", "expected a positive number, got 'nan'"),
        (params.parse_fraction, "1", "expected a fraction in [0, 1), got '1'"),
        (params.parse_factors, "1,4", "scale factors must be >= 2, got '1,4'"),
        (params.parse_som_shape, "1x1", "a map needs at least 2 codes, got '1x1'"),
    ],
)
def test_option_parsers_say_what_was_expected(parse, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(text)
