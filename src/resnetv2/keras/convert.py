"""Weight transfer between the PyTorch model, its Keras twin and keras.applications.

Layer names make the mapping mechanical: the Keras twin's layer for PyTorch module
``stages.0.blocks.1.conv2`` is ``stages_0_blocks_1_conv2``. Layouts differ per kind:

==================  ======================  =============================================
PyTorch             Keras                   conversion
==================  ======================  =============================================
Conv2d weight       Conv2D kernel           OIHW ↔ HWIO
Linear weight       Dense kernel            (out, in) ↔ (in, out)
1×1-conv classifier Dense kernel            (out, in, 1, 1) ↔ (in, out) (timm's ``head.fc``)
BatchNorm           BatchNormalization      weight/bias/running_mean/running_var ↔
                                            gamma/beta/moving_mean/moving_variance
GroupNorm           GroupNormalization      weight/bias ↔ gamma/beta
==================  ======================  =============================================

keras.applications ``ResNet50V2``/``101V2``/``152V2`` name their layers by stage and block
(``conv2_block1_preact_bn``, ``conv2_block1_0_conv``, ``post_bn``, ``predictions``);
:func:`keras_applications_names` maps them to ours for the ``keras_resnet*v2`` presets, so
Keras' ImageNet weight files (``.h5`` and Keras 3 ``.weights.h5``) load into either twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from resnetv2.errors import ResNetV2Error, SpecError
from resnetv2.model_metadata import ModelMetadata
from resnetv2.options import make_spec
from resnetv2.spec import ResNetV2Spec, iter_units, stem_out_channels

#: Keras variable roles per layer kind, in Keras' own weight order.
ROLES = {
    "conv": ("kernel", "bias"),
    "fc_conv": ("kernel", "bias"),
    "linear": ("kernel", "bias"),
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
    "gn": ("gamma", "beta"),
}
TORCH_NAME = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def keras_layer_name(torch_name: str) -> str:
    """The Keras twin's layer name for a PyTorch module name."""
    return torch_name.replace(".", "_")


def _weighted_modules(torch_model) -> list[tuple[str, str, Any]]:
    """(module name, kind, module) for every module holding weights, in model order."""
    from torch import nn

    out = []
    for name, module in torch_model.named_modules():
        if isinstance(module, nn.Conv2d):
            kind = "fc_conv" if name == "head.fc" else "conv"
        elif isinstance(module, nn.Linear):
            kind = "linear"
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            kind = "bn"
        elif isinstance(module, nn.GroupNorm):
            kind = "gn"
        else:
            if any(True for _ in module.parameters(recurse=False)):
                raise ResNetV2Error(f"no Keras equivalent for {name} ({type(module).__name__})")
            continue
        out.append((name, kind, module))
    return out


def _roles(kind: str, module) -> list[str]:
    """The roles a module actually has (a conv without bias has no 'bias')."""
    return [r for r in ROLES[kind] if getattr(module, TORCH_NAME[r], None) is not None]


def _to_keras(kind: str, role: str, array: np.ndarray) -> np.ndarray:
    if role != "kernel":
        return array
    if kind == "conv":
        return array.transpose(2, 3, 1, 0)
    if kind == "fc_conv":
        return array[:, :, 0, 0].T
    return array.T


def _to_torch(kind: str, role: str, array: np.ndarray) -> np.ndarray:
    if role != "kernel":
        return array
    if kind == "conv":
        return array.transpose(3, 2, 0, 1)
    if kind == "fc_conv":
        return array.T[:, :, None, None]
    return array.T


def _fill_torch(torch_model, arrays: dict[str, list[np.ndarray]], source: str) -> None:
    """Load ``arrays`` (Keras layer name → arrays in Keras order) into ``torch_model``."""
    import torch

    state = torch_model.state_dict()
    used = set()
    for name, kind, module in _weighted_modules(torch_model):
        kname = keras_layer_name(name)
        if kname not in arrays:
            raise SpecError(f"{source} has no weights for layer {kname!r} (PyTorch {name})")
        roles = _roles(kind, module)
        values = arrays[kname]
        if len(values) != len(roles):
            raise SpecError(
                f"{source} layer {kname!r} holds {len(values)} arrays; {name} needs "
                f"{len(roles)} ({', '.join(roles)})"
            )
        for role, value in zip(roles, values):
            key = f"{name}.{TORCH_NAME[role]}"
            target = state[key]
            value = _to_torch(kind, role, np.asarray(value))
            if tuple(value.shape) != tuple(target.shape):
                raise SpecError(
                    f"shape mismatch for {key}: {source} has {tuple(value.shape)} "
                    f"(as PyTorch layout), the model needs {tuple(target.shape)}"
                )
            state[key] = torch.as_tensor(np.ascontiguousarray(value), dtype=target.dtype)
        used.add(kname)
    extra = sorted(set(arrays) - used)
    if extra:
        raise SpecError(
            f"{source} has weights the PyTorch model lacks: {', '.join(extra[:5])}"
            + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else "")
        )
    torch_model.load_state_dict(state, strict=True)


def _keras_arrays(keras_model: keras.Model) -> dict[str, list[np.ndarray]]:
    """Layer name → its variables as numpy arrays, for every layer that has weights."""
    from resnetv2.keras.standalone import PREPROCESS_PREFIX

    return {
        layer.name: [np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.weights]
        for layer in keras_model.layers
        if layer.weights and not layer.name.startswith(PREPROCESS_PREFIX)
    }


def torch_to_keras(torch_model, keras_model: keras.Model | None = None, **build_options):
    """Copy a PyTorch ResNetV2's weights into its Keras twin (built when not given).

    ``build_options`` go to :func:`resnetv2.keras.builder.build_spec` (``input_shape=``,
    ``classifier_activation=``…). Returns the Keras model.
    """
    from resnetv2.keras.builder import build_spec
    from resnetv2.nn.model import spec_of

    if keras_model is None:
        keras_model = build_spec(spec_of(torch_model), **build_options)
    from resnetv2.keras.standalone import PREPROCESS_PREFIX

    keras_layers = {
        layer.name: layer
        for layer in keras_model.layers
        if layer.weights and not layer.name.startswith(PREPROCESS_PREFIX)
    }
    used = set()
    for name, kind, module in _weighted_modules(torch_model):
        kname = keras_layer_name(name)
        layer = keras_layers.get(kname)
        if layer is None:
            raise SpecError(f"the Keras model has no layer {kname!r} for PyTorch {name}")
        roles = _roles(kind, module)
        if len(layer.weights) != len(roles):
            raise SpecError(
                f"Keras layer {kname!r} has {len(layer.weights)} variables; PyTorch {name} has "
                f"{len(roles)} ({', '.join(roles)})"
            )
        for role in roles:
            tensor = getattr(module, TORCH_NAME[role]).detach().cpu().float().numpy()
            value = _to_keras(kind, role, tensor)
            variable = getattr(layer, role)
            if tuple(variable.shape) != value.shape:
                raise SpecError(
                    f"shape mismatch for {kname}.{role}: PyTorch gives {value.shape} (Keras "
                    f"layout), the Keras model has {tuple(variable.shape)}"
                )
            variable.assign(value)
        used.add(kname)
    extra = sorted(set(keras_layers) - used)
    if extra:
        raise SpecError(f"Keras layers without PyTorch weights: {', '.join(extra[:5])}")
    return keras_model


def keras_to_torch(keras_model: keras.Model, torch_model=None, *, spec: ResNetV2Spec | None = None):
    """Copy a Keras twin's weights into a PyTorch ResNetV2 (built from ``spec`` if not given).

    A model from :func:`resnetv2.keras.create_model` remembers its spec in memory; a
    ``.keras`` file written by ``resnetv2 export`` stores it (with the class names and
    preprocessing, set as ``torch_model.metadata``), so a reloaded export converts back as it
    is. For other reloaded models pass ``spec=`` (or a ``torch_model``).
    """
    from resnetv2.keras.standalone import read_metadata
    from resnetv2.nn.model import ResNetV2

    stored = read_metadata(keras_model)
    if torch_model is None:
        spec = spec or getattr(keras_model, "_resnetv2_spec", None)
        if spec is None and stored is not None:
            spec = ResNetV2Spec.from_dict(stored["spec"])
        if spec is None:
            raise SpecError(
                "this Keras model does not carry its spec (only `resnetv2 export` files "
                "store it): pass spec= or torch_model="
            )
        torch_model = ResNetV2(spec)
    _fill_torch(torch_model, _keras_arrays(keras_model), "the Keras model")
    if stored is not None:
        torch_model.metadata = ModelMetadata(
            spec=torch_model.spec,
            class_names=stored.get("class_names"),
            preprocessing=stored.get("preprocessing"),
        )
    return torch_model


# -- keras.applications -------------------------------------------------------------------


def check_keras_applications_spec(spec: ResNetV2Spec) -> None:
    """Raise unless ``spec`` has keras.applications' ResNetV2 layout (4 bottleneck stages)."""
    problems = []
    if spec.block != "bottleneck" or len(spec.stages) != 4:
        problems.append("4 bottleneck stages")
    if spec.stride_at != "last_unit":
        problems.append("stride_at='last_unit'")
    if spec.stem_type != "conv7x7_zeropad_maxpool":
        problems.append("stem_type='conv7x7_zeropad_maxpool'")
    if spec.conv_bias != "keras":
        problems.append("conv_bias='keras'")
    if spec.head != "linear" or spec.classifier != "linear" or not spec.final_norm:
        problems.append("a linear head after the final norm")
    if spec.norm != "batch" or spec.shortcut_input != "preact":
        problems.append("batch norm and preact shortcuts")
    if problems:
        raise SpecError(
            "keras.applications weights need the keras_resnet50v2/101v2/152v2 layout: "
            + ", ".join(problems)
        )


def keras_applications_names(spec: ResNetV2Spec) -> dict[str, str]:
    """keras.applications layer name → our PyTorch module name, for weighted layers."""
    check_keras_applications_spec(spec)
    names = {"conv1_conv": "stem.conv", "post_bn": "norm"}
    if spec.num_classes:
        names["predictions"] = "head.fc"
    parts = {
        "preact_bn": "norm1",
        "0_conv": "downsample.conv",
        "1_conv": "conv1",
        "1_bn": "norm2",
        "2_conv": "conv2",
        "2_bn": "norm3",
        "3_conv": "conv3",
    }
    for unit in iter_units(spec, stem_out_channels(spec)):
        theirs = f"conv{unit.stage + 2}_block{unit.index + 1}_"
        ours = f"stages.{unit.stage}.blocks.{unit.index}."
        for their_part, our_part in parts.items():
            if their_part == "0_conv" and unit.shortcut != "projection":
                continue
            names[theirs + their_part] = ours + our_part
    return names


def _rename_keras_applications(
    arrays: dict[str, list[np.ndarray]], spec: ResNetV2Spec, source: str
) -> dict[str, list[np.ndarray]]:
    names = keras_applications_names(spec)
    unknown = sorted(set(arrays) - set(names))
    if unknown:
        raise SpecError(
            f"{source} has layers that {spec.name or 'this spec'} lacks: "
            f"{', '.join(unknown[:5])} — is it a different ResNetV2 depth or include_top?"
        )
    missing = sorted(set(names) - set(arrays))
    if missing:
        raise SpecError(f"{source} lacks layers {', '.join(missing[:5])}")
    return {keras_layer_name(names[k]): v for k, v in arrays.items()}


def from_keras_applications(
    ka_model: keras.Model, preset: str | ResNetV2Spec = "keras_resnet50v2", **build_options
) -> keras.Model:
    """Our Keras twin carrying a keras.applications ResNetV2's weights.

    ``preset`` is the matching ``keras_resnet*v2`` preset (or spec); ``build_options`` go to
    :func:`resnetv2.keras.create_model` (``input_shape=``, ``num_classes=``…).
    """
    from resnetv2.keras.builder import create_model

    spec = preset if isinstance(preset, ResNetV2Spec) else make_spec(preset)
    ours = create_model(spec, **build_options)
    arrays = _rename_keras_applications(_keras_arrays(ka_model), ours._resnetv2_spec, "the model")
    for name, values in arrays.items():
        layer = ours.get_layer(name)
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise SpecError(f"shape mismatch at layer {name}")
        layer.set_weights(values)
    return ours


def read_keras_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Layer name → arrays (Keras order) from a Keras weights file.

    Reads both Keras 3 ``.weights.h5`` files (``model.save_weights``) and legacy ``.h5``
    files (Keras 2 / keras.applications' downloadable ImageNet weights, or
    ``model.save("x.h5")``). Nothing is unpickled: HDF5 holds plain arrays.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ResNetV2Error(f"{path} is not an HDF5 weights file ({exc})") from None
    with handle as f:
        if "layers" in f and isinstance(f["layers"], h5py.Group) and "layer_names" not in f.attrs:
            return _read_keras3(f["layers"])
        group = f.get("model_weights", f)
        if "layer_names" not in group.attrs:
            raise ResNetV2Error(f"{path} is not a Keras weights file (no layers found)")
        return _read_legacy(group)


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_keras3(layers) -> dict[str, list[np.ndarray]]:
    out = {}
    for key in layers:
        group = layers[key]
        if "vars" not in group or not len(group["vars"]):
            continue
        variables = group["vars"]
        name = _text(variables.attrs.get("name", key))
        out[name] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
    return out


def _read_legacy(group) -> dict[str, list[np.ndarray]]:
    out = {}
    for layer_name in group.attrs["layer_names"]:
        layer_name = _text(layer_name)
        layer = group[layer_name]
        weight_names = [_text(w) for w in layer.attrs.get("weight_names", [])]
        if weight_names:
            out[layer_name] = [np.asarray(layer[w]) for w in weight_names]
    return out


def load_keras_applications_weights(
    path: str | Path,
    preset: str | ResNetV2Spec = "keras_resnet50v2",
    *,
    framework: str = "torch",
    **options: Any,
):
    """Load a keras.applications ResNetV2 weights file into our PyTorch (or Keras) model.

    ``path`` is a ``.h5`` or ``.weights.h5`` file of ``keras.applications.ResNet50V2`` (or
    101V2/152V2) — Keras' ImageNet files included; ``preset`` the matching
    ``keras_resnet*v2`` preset (or spec); ``options`` go to :func:`resnetv2.make_spec`
    (``num_classes=0`` for an ``include_top=False`` file). Returns a ``ResNetV2`` in
    inference-ready state (call ``.eval()``) or, with ``framework="keras"``, the Keras twin.
    """
    if framework not in ("torch", "keras"):
        raise SpecError(f"framework must be 'torch' or 'keras', got {framework!r}")
    spec = preset if isinstance(preset, ResNetV2Spec) else make_spec(preset, **options)
    if isinstance(preset, ResNetV2Spec) and options:
        spec = spec.replace(**options)
    arrays = read_keras_weights(path)
    source = str(path)
    if "predictions" not in arrays and spec.num_classes:
        raise SpecError(
            f"{source} has no classifier ('predictions'): it is an include_top=False file; "
            "pass num_classes=0 to load it as a backbone"
        )
    renamed = _rename_keras_applications(arrays, spec, source)
    if framework == "torch":
        from resnetv2.nn.model import ResNetV2

        model = ResNetV2(spec)
        _fill_torch(model, renamed, source)
        return model
    from resnetv2.keras.builder import build_spec

    model = build_spec(spec)
    for name, values in renamed.items():
        layer = model.get_layer(name)
        if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise SpecError(f"shape mismatch at layer {name} in {source}")
        layer.set_weights(values)
    return model
