"""Export formats come from one registry (``resnetv2.export.EXPORT_FORMATS``): the CLI's
``--format`` choices and default suffixes are its keys, and ``export_model`` dispatches
through it, so a new format is one entry there."""

import argparse

import pytest

import resnetv2
from resnetv2.cli.export import default_out, register
from resnetv2.errors import ResNetV2Error
from resnetv2.export import (
    EXPORT_FORMATS,
    FORMATS,
    SUFFIXES,
    ExportFormat,
    ExportResult,
    export_model,
)


def test_the_cli_choices_and_suffixes_are_the_registry():
    assert FORMATS == tuple(EXPORT_FORMATS) == ("onnx", "torch-export", "keras")
    assert SUFFIXES == {"onnx": ".onnx", "torch-export": ".pt2", "keras": ".keras"}
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    export = parser._subparsers._group_actions[0].choices["export"]
    (fmt,) = [a for a in export._actions if a.dest == "format"]
    assert tuple(fmt.choices) == FORMATS


def test_export_model_dispatches_through_the_registry(tmp_path, monkeypatch):
    calls = []

    def write(model, target, request):
        calls.append((target, request.input_shape, request.tolerance))
        return ExportResult(target, "fake", request.input_shape, {1: 0.0})

    monkeypatch.setitem(EXPORT_FORMATS, "fake", ExportFormat(".fake", write))
    model = resnetv2.create_model(8, widths=[4, 8, 16])
    result = export_model(model, tmp_path / "m.fake", "fake", input_shape=(3, 8, 8))
    assert calls == [(tmp_path / "m.fake", (3, 8, 8), 1e-4)]
    assert result.passed
    assert default_out(tmp_path / "m.safetensors", "onnx") == tmp_path / "m.onnx"


def test_an_unknown_format_is_refused_naming_the_registered_ones(tmp_path):
    model = resnetv2.create_model(8, widths=[4, 8, 16])
    with pytest.raises(ResNetV2Error, match="onnx, torch-export, keras"):
        export_model(model, tmp_path / "m.x", "tflite")
