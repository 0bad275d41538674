"""A ``.keras`` model that stands alone: raw pixels in, class probabilities out, and the
spec, class names and preprocessing inside the file.

keras.applications users expect ``keras.saving.load_model(path)(images)`` to give
probabilities for 0-255 pixels; a bare twin needs our normalisation applied first and
returns logits. The stand-alone model therefore adds, with built-in layers only (no
``custom_objects`` on any backend):

- ``preprocess_normalize``: ``Normalization(mean=255·mean, variance=(255·std)²)`` — the
  ``(x/255 - mean)/std`` of :class:`~resnetv2.data.preprocessing.Preprocessing`;
- a softmax on the classifier (``logits=True`` keeps logits);
- ``resnetv2_meta_<...>``: an ``Identity`` layer whose *name* holds the metadata (zlib +
  URL-safe base64 JSON of spec, class names, preprocessing, output kind). A layer name is
  the one free-form string Keras serialises for built-in layers, so the information survives
  ``load_model`` on any backend and :func:`read_metadata` finds it again, which is what lets
  :func:`resnetv2.keras.keras_to_torch` rebuild the PyTorch model from a reloaded file.

Resizing stays outside the model (as in keras.applications): give it images at the
``preprocessing`` input size, resized as ``resnetv2 predict`` resizes them.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from typing import Any

import keras

from resnetv2 import jsontext
from resnetv2.errors import SpecError
from resnetv2.spec import ResNetV2Spec

META_PREFIX = "resnetv2_meta_"
#: Layers that belong to the stand-alone wrapper, not to the network's weights.
PREPROCESS_PREFIX = "preprocess_"


def encode_metadata(metadata: Mapping[str, Any]) -> str:
    """The metadata layer's name."""
    raw = zlib.compress(json.dumps(metadata, separators=(",", ":")).encode("utf-8"), 9)
    return META_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii")


MAX_METADATA_BYTES = 1024 * 1024
"""Most bytes the metadata may decompress to (a ResNet-1001's is a few kilobytes): a
``.keras`` file is user input, and a layer name of a few MB can inflate to gigabytes."""


def read_metadata(model: keras.Model) -> dict[str, Any] | None:
    """The metadata a stand-alone model carries (None for other Keras models); a damaged,
    oversized or incomplete one raises :class:`SpecError`."""
    for layer in model.layers:
        if layer.name.startswith(META_PREFIX):
            try:
                raw = base64.urlsafe_b64decode(layer.name[len(META_PREFIX) :].encode("ascii"))
                meta = jsontext.loads(_inflate(raw).decode("utf-8"))
            except (ValueError, zlib.error) as exc:
                raise SpecError(f"the model's resnetv2 metadata layer is damaged: {exc}") from None
            if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
                raise SpecError("the model's resnetv2 metadata layer is damaged: it has no spec")
            return meta
    return None


def _inflate(raw: bytes) -> bytes:
    """``zlib.decompress(raw)``, refusing more than :data:`MAX_METADATA_BYTES` of output
    before it is allocated."""
    inflater = zlib.decompressobj()
    text = inflater.decompress(raw, MAX_METADATA_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        more = "more than" if inflater.unconsumed_tail else "an incomplete stream of"
        raise ValueError(f"it decompresses to {more} {MAX_METADATA_BYTES:,} bytes")
    return text


def build_standalone(
    spec: ResNetV2Spec,
    preprocessing: Mapping[str, Any],
    *,
    class_names: list[str] | None = None,
    logits: bool = False,
) -> keras.Model:
    """The Keras twin of ``spec`` behind a normalisation layer, with a softmax unless
    ``logits``; input ``(H, W, C)`` pixels in 0..255 at the preprocessing's size."""
    from resnetv2.keras.builder import _Layers, recursion_headroom

    height, width = (int(v) for v in preprocessing["input_size"])
    channels = int(preprocessing.get("in_channels", spec.in_channels))
    if channels != spec.in_channels:
        raise SpecError(
            f"preprocessing gives {channels} channels but the model takes {spec.in_channels}"
        )
    mean = [255.0 * float(m) for m in preprocessing["mean"]]
    variance = [(255.0 * float(s)) ** 2 for s in preprocessing["std"]]
    output = "logits" if logits or not spec.num_classes else "probabilities"
    meta = {
        "spec": spec.to_dict(),
        "class_names": list(class_names) if class_names is not None else None,
        "preprocessing": dict(preprocessing),
        "output": output,
        "input": "pixels 0-255, (H, W, C), already resized to input_size",
    }
    inputs = keras.Input(shape=(height, width, channels), name="pixels")
    x = keras.layers.Identity(name=encode_metadata(meta))(inputs)
    x = keras.layers.Normalization(
        axis=-1, mean=mean, variance=variance, name=PREPROCESS_PREFIX + "normalize"
    )(x)
    layers = _Layers(spec, 0.9, None)
    x = layers.head(layers.features(x), "softmax" if output == "probabilities" else None)
    name = (spec.name or f"resnetv2_{spec.depth}").replace(".", "_")
    with recursion_headroom(spec):
        model = keras.Model(inputs, x, name=name)
    model._resnetv2_spec = spec
    return model
