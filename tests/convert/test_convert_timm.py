"""timm ResNetV2 → resnetv2: architecture detection and output parity on random weights."""

from __future__ import annotations

import pytest
import timm
import torch

from resnetv2 import make_spec
from resnetv2.convert import ConversionError, convert_timm_state_dict, fetch_timm, import_checkpoint
from resnetv2.convert.timm import timm_spec_from_state_dict

X64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "name, prefix",
    [("resnetv2_18", ""), ("resnetv2_50", "module."), ("resnetv2_18", "_orig_mod.module.")],
)
def test_output_parity(name, prefix, timm_nets, output_diff):
    net = timm_nets[name]
    state = {prefix + k: v for k, v in net.state_dict().items()}
    imported = convert_timm_state_dict(state)
    assert imported.spec == make_spec(name)  # detected from the shapes alone
    assert imported.preprocessing["interpolation"] == "bicubic"  # timm's pretrained config
    assert len(imported.class_names) == 1000
    assert output_diff(net, imported.build_model(), X64) <= 1e-4


def test_detects_custom_classes_channels_and_units(randomized, output_diff):
    net = randomized(
        timm.create_model("resnetv2_18", num_classes=7, in_chans=1, layers=(1, 2, 1, 1))
    )
    spec = timm_spec_from_state_dict(net.state_dict())
    assert (spec.num_classes, spec.in_channels, spec.units_per_stage) == (7, 1, (1, 2, 1, 1))
    assert spec.name == "timm_resnetv2"  # no preset has these units
    imported = convert_timm_state_dict(net.state_dict())
    assert output_diff(net, imported.build_model(), torch.randn(2, 1, 64, 64)) <= 1e-4


def test_backbone_without_classifier(timm_nets):
    net = timm_nets["resnetv2_18"]
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("head.fc.")}
    imported = convert_timm_state_dict(state)
    assert imported.spec.num_classes == 0
    with torch.no_grad():
        expected = net.forward_head(net.forward_features(X64), pre_logits=True)
        got = imported.build_model()(X64)
    assert (expected - got).abs().max().item() <= 1e-4


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".bin"])
def test_checkpoint_file_round_trip(tmp_path, suffix, timm_nets, output_diff):
    from safetensors.torch import save_file

    net = timm_nets["resnetv2_18"]
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    model = import_checkpoint(path, library="timm").build_model()
    assert output_diff(net, model, X64) <= 1e-4


def test_pickled_code_is_refused(tmp_path):
    from resnetv2.io import UnsafeCheckpointError

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"stem.conv.weight": torch.zeros(1), "x": Evil()}, path)
    with pytest.raises(UnsafeCheckpointError):
        import_checkpoint(path)


@pytest.mark.parametrize(
    "variant, message", [("resnetv2_18d", "deep stem"), ("resnetv2_50x1_bit", "GroupNorm")]
)
def test_unsupported_variants_are_refused(variant, message):
    with torch.device("meta"):
        state = timm.create_model(variant).state_dict()
    with pytest.raises(ConversionError, match=message):
        timm_spec_from_state_dict(state)


def test_shape_mismatch_is_a_strict_error(timm_nets):
    from resnetv2.io import WeightsMismatchError

    state = dict(timm_nets["resnetv2_18"].state_dict())
    state["stages.1.blocks.1.conv1.weight"] = torch.zeros(128, 128, 1, 1)
    with pytest.raises(WeightsMismatchError, match=r"stages\.1\.blocks\.1\.conv1\.weight"):
        convert_timm_state_dict(state).build_model()


def test_offline_download_gives_local_file_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []

    def offline(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        raise OSError("We have no connection or you passed local_files_only")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ConversionError) as info:
        fetch_timm("resnetv2_50")
    message = str(info.value)
    assert calls == []  # offline mode is checked before timm tries (and retries) a download
    assert "--init-weights resnetv2_50.safetensors" in message
    assert "huggingface.co/timm/resnetv2_50" in message
    with pytest.raises(ConversionError, match="not a timm ResNetV2"):
        fetch_timm("resnet50")
