"""The Keras side of ``resnetv2 summary --framework keras``."""

from __future__ import annotations

from typing import Any

from resnetv2.spec import ResNetV2Spec


def keras_summary(spec: ResNetV2Spec, input_size: int | None = None) -> dict[str, Any]:
    """Build ``spec`` in Keras and report its own counts.

    Returns ``params_total`` (Keras' ``count_params()``: BN moving mean/variance included),
    ``params_trainable`` (equal to the PyTorch model's parameter count), ``params_non_trainable``,
    ``layers`` (number of Keras layers, input included), ``output_shape``, ``input_shape``,
    ``keras_version``, ``backend`` and ``text`` (a few lines for the terminal).
    """
    import keras

    from resnetv2.keras.builder import build_spec, default_input_size

    size = input_size or default_input_size(spec)
    model = build_spec(spec, input_shape=(size, size, spec.in_channels))
    trainable = sum(int(_size(w.shape)) for w in model.trainable_weights)
    total = int(model.count_params())
    output_shape = list(model.output.shape)
    text = "\n".join(
        [
            f"Keras {keras.__version__} ({keras.backend.backend()} backend): functional model "
            f"{model.name!r}, {len(model.layers):,} layers, input {size}×{size}×{spec.in_channels}"
            f" (channels_last), output {tuple(output_shape)}",
            f"count_params {total:,} = trainable {trainable:,} + non-trainable "
            f"{total - trainable:,} (BN moving statistics)",
        ]
    )
    return {
        "params_total": total,
        "params_trainable": trainable,
        "params_non_trainable": total - trainable,
        "layers": len(model.layers),
        "input_shape": [size, size, spec.in_channels],
        "output_shape": output_shape,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "text": text,
    }


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
