"""Build a :class:`~resnetv2.spec.ResNetV2Spec` as a Keras 3 functional model.

A thin translation of the spec, layer for layer the PyTorch twin (:mod:`resnetv2.nn`): the
units come from :func:`resnetv2.spec.iter_units`, so depth, stride placement and shortcut
rules are never re-derived here. Each weighted layer is named after its PyTorch module with
``.`` replaced by ``_`` (``stages.0.blocks.1.conv2`` → ``stages_0_blocks_1_conv2``).

Two details make outputs equal to PyTorch's, not merely close:

- PyTorch pads every conv symmetrically by ``k // 2``. Keras' ``padding="same"`` pads
  asymmetrically when a stride-2 conv meets an even input, so strided convs get an explicit
  ``ZeroPadding2D`` and ``padding="valid"`` (as keras.applications does). Stride-1 convs use
  ``"same"``, which is symmetric for odd kernels.
- PyTorch's ``MaxPool2d(3, 2, padding=1)`` ignores its padding (pads with -inf). The same
  result comes from a stride-1 ``"same"`` max-pool (symmetric, padding ignored) followed by a
  1×1 stride-2 max-pool that keeps every other pixel. keras.applications' stem instead pads
  with zeros (``stem_type="conv7x7_zeropad_maxpool"``).

Only built-in layers are used (drop-path is ``Dropout`` with a per-sample noise shape), so a
saved ``.keras`` file loads with ``keras.saving.load_model`` and no custom objects.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import keras

from resnetv2.errors import SpecError
from resnetv2.options import make_spec
from resnetv2.spec import ResNetV2Spec, UnitSpec, conv_has_bias, iter_units, stem_out_channels

_FMT = "channels_last"
POOLINGS = (None, "avg", "max")
#: Presets that mirror keras.applications and the seed tutorial, whose models end in a
#: softmax: :func:`create_model` defaults to the same head for them.
SOFTMAX_PRESETS = ("keras_resnet50v2", "keras_resnet101v2", "keras_resnet152v2", "seed")


def default_input_size(spec: ResNetV2Spec) -> int:
    """224 for ImageNet stems (7×7 conv + max-pool), 32 for CIFAR-style stems."""
    return 224 if spec.stem_type.startswith("conv7x7") else 32


def _resolve_spec(model: Any, options: dict[str, Any]) -> ResNetV2Spec:
    if isinstance(model, ResNetV2Spec):
        return model.replace(**options) if options else model
    return make_spec(model, **options)


def _input_shape(spec: ResNetV2Spec, input_shape: Any) -> tuple:
    if input_shape is None:
        size = default_input_size(spec)
        return (size, size, spec.in_channels)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise SpecError(
            f"input_shape must be (height, width, channels) (channels_last), got {input_shape!r}"
        )
    for dim in input_shape[:2]:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise SpecError(
                f"input_shape height/width must be positive ints or None: {input_shape}"
            )
    if input_shape[2] != spec.in_channels:
        raise SpecError(
            f"input_shape has {input_shape[2]} channels but the spec has in_channels="
            f"{spec.in_channels}; pass in_channels={input_shape[2]} as an option"
        )
    return tuple(input_shape)


def create_model(
    model: str | int | ResNetV2Spec | None = None,
    /,
    *,
    input_shape: tuple | None = None,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str | None = "auto",
    bn_momentum: float = 0.9,
    kernel_regularizer: Any = None,
    **options: Any,
) -> keras.Model:
    """Build the Keras twin of ``resnetv2.create_model(model, **options)``.

    ``model`` is a preset name, a depth or a spec; ``options`` are
    :func:`resnetv2.make_spec` options. Keras-only arguments:

    - ``input_shape``: ``(H, W, C)``, channels_last; default 32×32 for CIFAR stems and
      224×224 for ImageNet stems. ``(None, None, C)`` accepts any size. ``C`` sets the input
      channels (``in_channels``) unless a spec or an explicit ``in_channels`` says otherwise.
    - ``include_top=False`` returns the backbone (the final BN-ReLU feature map), pooled when
      ``pooling`` is ``"avg"`` or ``"max"`` (as in keras.applications). A spec with
      ``num_classes=0`` keeps the head's pooling (and the dense head's hidden block) but no
      classifier: the output equals the PyTorch model's with ``num_classes=0``.
    - ``classifier_activation``: ``"auto"`` (default) is ``"softmax"`` for the presets that
      mirror keras.applications and the seed tutorial (``keras_resnet*v2``, ``seed``), as
      those models do, and ``None`` (logits, like the PyTorch model) otherwise; pass
      ``None`` or ``"softmax"`` to choose.
    - ``bn_momentum``: Keras' moving-average momentum; 0.9 equals PyTorch's default 0.1.
    - ``kernel_regularizer``: a Keras regularizer, or a float for L2 on every conv and dense
      kernel (the seed tutorial used ``1e-4``).
    """
    if input_shape is not None and not isinstance(model, ResNetV2Spec):
        channels = input_shape[-1] if isinstance(input_shape, (tuple, list)) else None
        if isinstance(channels, int) and not isinstance(channels, bool):
            options.setdefault("in_channels", channels)
    if classifier_activation == "auto":
        softmax = isinstance(model, str) and model in SOFTMAX_PRESETS
        classifier_activation = "softmax" if softmax else None
    spec = _resolve_spec(model, options)
    return build_spec(
        spec,
        input_shape=input_shape,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        bn_momentum=bn_momentum,
        kernel_regularizer=kernel_regularizer,
    )


def build_spec(
    spec: ResNetV2Spec,
    *,
    input_shape: tuple | None = None,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str | None = None,
    bn_momentum: float = 0.9,
    kernel_regularizer: Any = None,
) -> keras.Model:
    """Build exactly ``spec`` (no option resolution); see :func:`create_model`."""
    if not isinstance(spec, ResNetV2Spec):
        raise SpecError(f"spec must be a ResNetV2Spec, got {type(spec).__name__}")
    if not isinstance(include_top, bool):
        raise SpecError(f"include_top must be True or False, got {include_top!r}")
    if pooling not in POOLINGS:
        raise SpecError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if include_top and pooling is not None:
        raise SpecError(
            "pooling applies to the backbone only: pass include_top=False with pooling="
            f"{pooling!r} (the head always average-pools)"
        )
    shape = _input_shape(spec, input_shape)
    layers = _Layers(spec, bn_momentum, kernel_regularizer)
    inputs = keras.Input(shape=shape, name="input")
    x = layers.features(inputs)
    if include_top:
        x = layers.head(x, classifier_activation)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(data_format=_FMT, name="pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(data_format=_FMT, name="pool")(x)
    name = (spec.name or f"resnetv2_{spec.depth}").replace(".", "_")
    with recursion_headroom(spec):
        model = keras.Model(inputs, x, name=name)
    # Not serialised with the model; convert.keras_to_torch uses it when present.
    model._resnetv2_spec = spec
    return model


@contextlib.contextmanager
def recursion_headroom(spec: ResNetV2Spec) -> Iterator[None]:
    """Raise Python's recursion limit while Keras walks a very deep graph.

    Keras' functional graph mapping recurses once per layer, so a ResNet-1001 (~4,000 layers)
    passes the default limit of 1,000. The old limit is restored afterwards.
    """
    old = sys.getrecursionlimit()
    needed = 20 * spec.total_units + 2000
    if needed > old:
        sys.setrecursionlimit(needed)
    try:
        yield
    finally:
        if needed > old:
            sys.setrecursionlimit(old)


def residual_stages(
    x: Any,
    depth: int | None = None,
    *,
    name: str = "residual",
    bn_momentum: float = 0.9,
    kernel_regularizer: Any = None,
    **options: Any,
) -> Any:
    """Append residual stages to your own Keras tensor and return the output tensor.

    The seed tutorial's ``build_resnet_layer``: ``residual_stages(x, 29)`` adds He et al.'s
    three CIFAR stages after ``x`` (channels taken from ``x``); ``units=[2, 2],
    widths=[64, 128]`` adds two custom ones. The output is the final feature map (after
    BN-ReLU unless ``final_norm=False``). Layer names start with ``name + "_"`` so the
    function can be used more than once in a model. The twin of
    :class:`resnetv2.nn.ResidualStages`.
    """
    channels = x.shape[-1]
    if channels is None:
        raise SpecError("residual_stages needs a tensor with a known channel count (channels_last)")
    options.setdefault("final_norm", True)
    spec = make_spec(depth, in_channels=int(channels), stem_type="none", num_classes=0, **options)
    prefix = f"{name}_" if name else ""
    return _Layers(spec, bn_momentum, kernel_regularizer, prefix).features(x)


class _Layers:
    """Layer factory for one spec; holds the naming prefix and shared layer settings."""

    def __init__(
        self, spec: ResNetV2Spec, bn_momentum: float, kernel_regularizer: Any, prefix: str = ""
    ) -> None:
        if isinstance(bn_momentum, bool) or not isinstance(bn_momentum, (int, float)):
            raise SpecError(f"bn_momentum must be a number in [0, 1), got {bn_momentum!r}")
        if not 0 <= bn_momentum < 1:
            raise SpecError(f"bn_momentum must be in [0, 1), got {bn_momentum!r}")
        if isinstance(kernel_regularizer, (int, float)) and not isinstance(
            kernel_regularizer, bool
        ):
            kernel_regularizer = keras.regularizers.L2(float(kernel_regularizer))
        self.spec = spec
        self.momentum = float(bn_momentum)
        self.regularizer = kernel_regularizer
        self.prefix = prefix

    # -- primitives ----------------------------------------------------------------------
    def conv(self, x, filters: int, kernel: int, stride: int, bias: bool, name: str, zero=False):
        name = self.prefix + name
        padding = "same" if kernel > 1 else "valid"
        if stride > 1 and kernel > 1:
            x = keras.layers.ZeroPadding2D(kernel // 2, data_format=_FMT, name=name + "_pad")(x)
            padding = "valid"
        # He et al. 2015 init, fan-out, as in the PyTorch twin (resnetv2.nn.init).
        init = (
            "zeros"
            if zero
            else keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
        )
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding=padding,
            use_bias=bias,
            data_format=_FMT,
            kernel_initializer=init,
            kernel_regularizer=self.regularizer,
            name=name,
        )(x)

    def norm_act(self, x, name: str, act: bool = True):
        name = self.prefix + name
        spec = self.spec
        if spec.norm == "group":
            x = keras.layers.GroupNormalization(
                spec.norm_groups, axis=-1, epsilon=spec.norm_eps, name=name
            )(x)
        else:
            x = keras.layers.BatchNormalization(
                axis=-1, epsilon=spec.norm_eps, momentum=self.momentum, name=name
            )(x)
        return keras.layers.ReLU(name=name + "_act")(x) if act else x

    # -- network parts -------------------------------------------------------------------
    def features(self, x):
        """Stem, residual units and the final norm (PyTorch ``forward_features``)."""
        spec = self.spec
        x = self.stem(x)
        for unit in iter_units(spec, stem_out_channels(spec)):
            x = self.unit(x, unit)
        if spec.final_norm:
            x = self.norm_act(x, "norm")
        return x

    def stem(self, x):
        spec = self.spec
        if spec.stem_type == "none":
            return x
        bias = conv_has_bias(spec, "stem")
        if spec.stem_type.startswith("conv7x7"):
            x = self.conv(x, spec.stem_width, 7, 2, bias, "stem_conv")
        else:
            x = self.conv(x, spec.stem_width, 3, 1, bias, "stem_conv")
        p = self.prefix
        if spec.stem_type == "conv3x3_bn_relu":
            x = self.norm_act(x, "stem_norm")
            if spec.stem_dropout:
                x = keras.layers.Dropout(spec.stem_dropout, name=p + "stem_drop")(x)
        elif spec.stem_type == "conv7x7_maxpool":
            # MaxPool2d(3, 2, padding=1) with PyTorch's ignored (-inf) padding, see module doc.
            x = keras.layers.MaxPooling2D(
                3, strides=1, padding="same", data_format=_FMT, name=p + "stem_pool_s1"
            )(x)
            x = keras.layers.MaxPooling2D(1, strides=2, data_format=_FMT, name=p + "stem_pool")(x)
        elif spec.stem_type == "conv7x7_zeropad_maxpool":
            x = keras.layers.ZeroPadding2D(1, data_format=_FMT, name=p + "stem_pad")(x)
            x = keras.layers.MaxPooling2D(3, strides=2, data_format=_FMT, name=p + "stem_pool")(x)
        return x

    def unit(self, x, unit: UnitSpec):
        """One pre-activation unit (He et al. 2016, Fig. 1b); mirrors nn.blocks."""
        spec = self.spec
        n = f"stages_{unit.stage}_blocks_{unit.index}_"
        x_pre = self.norm_act(x, n + "norm1") if unit.preact else x
        if unit.shortcut == "projection":
            source = x if spec.shortcut_input == "raw" else x_pre
            bias = conv_has_bias(spec, "shortcut")
            shortcut = self.conv(
                source, unit.out_channels, 1, unit.stride, bias, n + "downsample_conv"
            )
        elif unit.shortcut == "subsample":
            # keras.applications' MaxPooling2D(1, strides=s): keep every s-th pixel.
            shortcut = keras.layers.MaxPooling2D(
                1, strides=unit.stride, data_format=_FMT, name=self.prefix + n + "subsample"
            )(x)
        else:
            shortcut = x
        inner, last = conv_has_bias(spec, "inner"), conv_has_bias(spec, "last")
        zero = spec.zero_init_last
        if unit.block == "bottleneck":
            s1 = unit.stride if unit.stride_on == "conv1" else 1
            s2 = unit.stride if unit.stride_on == "conv2" else 1
            y = self.conv(x_pre, unit.width, 1, s1, inner, n + "conv1")
            y = self.conv(self.norm_act(y, n + "norm2"), unit.width, 3, s2, inner, n + "conv2")
            y = self.norm_act(y, n + "norm3")
            y = self.conv(y, unit.out_channels, 1, 1, last, n + "conv3", zero=zero)
        else:
            y = self.conv(x_pre, unit.width, 3, unit.stride, inner, n + "conv1")
            y = self.norm_act(y, n + "norm2")
            y = self.conv(y, unit.out_channels, 3, 1, last, n + "conv2", zero=zero)
        if unit.drop_path > 0:
            # Stochastic depth (Huang et al. 2016) as a built-in layer: one keep/drop
            # decision per sample, survivors scaled by 1/keep, identity at inference.
            y = keras.layers.Dropout(
                unit.drop_path, noise_shape=(None, 1, 1, 1), name=self.prefix + n + "drop_path"
            )(y)
        return keras.layers.Add(name=self.prefix + n + "add")([y, shortcut])

    def head(self, x, classifier_activation: str | None):
        """Global average pool, optional dense block, dropout, classifier (nn.heads)."""
        spec = self.spec
        p = self.prefix
        small = keras.initializers.RandomNormal(0.0, 0.01)
        x = keras.layers.GlobalAveragePooling2D(data_format=_FMT, name=p + "head_pool")(x)
        if spec.head == "dense":
            x = keras.layers.Dense(
                spec.head_hidden,
                kernel_initializer=small,
                kernel_regularizer=self.regularizer,
                name=p + "head_hidden",
            )(x)
            x = keras.layers.ReLU(name=p + "head_hidden_act")(x)
            x = keras.layers.BatchNormalization(
                epsilon=spec.norm_eps, momentum=self.momentum, name=p + "head_hidden_norm"
            )(x)
            x = keras.layers.Dropout(spec.head_dropout, name=p + "head_hidden_drop")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=p + "head_drop")(x)
        if spec.num_classes:
            # A 1×1-conv classifier (timm) on a pooled vector is a Dense layer.
            x = keras.layers.Dense(
                spec.num_classes,
                activation=classifier_activation,
                kernel_initializer=small,
                kernel_regularizer=self.regularizer,
                name=p + "head_fc",
            )(x)
        return x
