"""``Preprocessing``: the one description of how an image becomes a model input.

Training builds it from the data it trained on (:meth:`Preprocessing.from_bundle`) and saves
it in the weights' metadata (:meth:`Preprocessing.to_metadata`); ``evaluate``, ``predict``,
:class:`~resnetv2.predict.Predictor` and every export read it back
(:meth:`Preprocessing.from_metadata`). Its fields and their validation are the torch-free
:class:`~resnetv2.preprocessing_spec.PreprocessingSpec` it extends (what ``model.preprocessing``
returns); the pixel code is not its own either: it composes the data layer's single
implementations, which the cached and streaming loaders use as well —

1. decoding policy: :func:`resnetv2.data.decode.decode_image` (any file → RGB uint8);
2. resize: :func:`resnetv2.data.resize.resize_pil` (cover the target, then centre-crop; the
   rounding is stated there), with ``interpolation`` and ``crop_pct``;
3. channels: :func:`resnetv2.data.channels.convert_channels` (Pillow's exact integer luma
   ``L = (19595 R + 38470 G + 7471 B + 32768) >> 16`` for 1-channel models), *after* the resize;
4. normalisation: :class:`resnetv2.data.stats.Normalizer`, ``(x / 255 - mean) / std``
   computed as ``x · 1/(255 std) − mean/std`` in float32.

so the same picture gives the same tensor whether it is trained on, evaluated or predicted.
``docs/data.md`` ("Preprocessing") shows the same steps in Pillow + NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image

from resnetv2.data.channels import convert_channels
from resnetv2.data.decode import DecodeOptions, decode_image, to_rgb_array
from resnetv2.data.resize import resize_pil
from resnetv2.data.stats import Normalizer
from resnetv2.model_metadata import metadata_of
from resnetv2.preprocessing_spec import PreprocessingError, PreprocessingSpec


class Preprocessing(PreprocessingSpec):
    """A :class:`~resnetv2.preprocessing_spec.PreprocessingSpec` that also applies itself to
    pixels: files, PIL images, arrays and tensors become uint8 ``[C, H, W]`` at
    ``input_size`` in the model's channels, and :meth:`normalize` standardises a batch."""

    # -- construction and metadata -----------------------------------------------------
    @classmethod
    def from_model(cls, model: Any) -> Preprocessing:
        """The preprocessing a model's weights were saved with (``model.metadata``)."""
        block = metadata_of(model).preprocessing
        if block is None:
            raise PreprocessingError(
                "the model carries no preprocessing metadata; pass a Preprocessing"
            )
        return cls.from_metadata(block)

    @classmethod
    def from_bundle(cls, bundle: Any) -> Preprocessing:
        """What training on ``bundle`` (a :class:`~resnetv2.data.DataBundle`) applied."""
        return cls(
            input_size=tuple(bundle.image_size),
            in_channels=int(bundle.in_channels),
            mean=tuple(bundle.mean),
            std=tuple(bundle.std),
        )

    # -- pixels: everything below returns uint8 [C, H, W] at input_size ----------------
    def decode(self, path: Any, options: DecodeOptions | None = None) -> torch.Tensor:
        """An image file through the decoding policy, resized, in the model's channels.

        Raises :class:`~resnetv2.data.decode.BadImageError` for a file the policy refuses.
        """
        image = decode_image(
            path,
            options,
            size=self.input_size,
            interpolation=self.interpolation,
            crop_pct=self.crop_pct,
        )
        return self.to_channels(image)

    def from_pil(self, image: Image.Image, options: DecodeOptions | None = None) -> torch.Tensor:
        """A PIL image by the decoding policy's mode rules (no EXIF rotation: the pixels
        are taken as given), then resized and converted like a file."""
        rgb = to_rgb_array(image, "<PIL image>", options or DecodeOptions())
        resized = resize_pil(
            Image.fromarray(rgb), self.input_size, self.interpolation, self.crop_pct
        )
        return self.to_channels(torch.from_numpy(np.asarray(resized).transpose(2, 0, 1).copy()))

    def from_array(self, array: Any, options: DecodeOptions | None = None) -> torch.Tensor:
        """An ``[H, W]`` or ``[H, W, C]`` (C = 1, 3 or 4) array of pixels.

        uint8 (and other integer) arrays are 0..255. Float arrays whose largest value is
        ≤ 1 are read as 0..1 and multiplied by 255; otherwise as 0..255. Floats are then
        rounded to uint8, so an array and the PNG saved from it predict the same.
        """
        return self.from_pil(Image.fromarray(pixels_uint8(array)), options)

    def from_tensor(
        self, image: torch.Tensor, options: DecodeOptions | None = None
    ) -> torch.Tensor:
        """A ``[C, H, W]`` tensor: uint8 pixels (C = 1 or 3, channels-first) are resized and
        converted like an array; a float tensor is taken as already preprocessed and only
        checked to be ``[in_channels, H, W]`` at the input size."""
        channels, (height, width) = self.in_channels, self.input_size
        if image.ndim != 3:
            raise PreprocessingError(
                f"a tensor must be one image [C, H, W] or a batch [N, C, H, W], got shape "
                f"{list(image.shape)}"
            )
        if image.dtype != torch.uint8:
            if not image.is_floating_point() or tuple(image.shape) != self.input_shape:
                raise PreprocessingError(
                    f"a float tensor is taken as already preprocessed and must be "
                    f"[N, {channels}, {height}, {width}] (or [{channels}, {height}, {width}]); "
                    f"got {image.dtype} {list(image.shape)}. Pass pixels as uint8"
                )
            return image.cpu()
        if image.shape[0] not in (1, 3):
            raise PreprocessingError(
                f"a uint8 tensor must be channels-first [C, H, W] with C = 1 or 3, got shape "
                f"{list(image.shape)} (for HWC pixels pass a NumPy array)"
            )
        return self.from_array(image.permute(1, 2, 0).cpu().numpy(), options)

    def to_channels(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 ``[C, H, W]`` or ``[N, C, H, W]`` (C = 1 or 3) with the model's channels."""
        if image.ndim == 3:
            return convert_channels(image[None], self.in_channels)[0]
        return convert_channels(image, self.in_channels)

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (0..255) ``[N, C, H, W]`` → float32, standardised with ``mean``/``std``."""
        return Normalizer(self.mean, self.std, batch.device)(batch)


def pixels_uint8(array: Any) -> np.ndarray:
    """``array`` as ``[H, W]`` or ``[H, W, C]`` uint8 pixels by the rule of
    :meth:`Preprocessing.from_array`; a clear error for anything else."""
    values = np.asarray(array)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    if not (values.ndim == 2 or (values.ndim == 3 and values.shape[2] in (3, 4))):
        raise PreprocessingError(
            f"an image array must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (HWC), got "
            f"shape {list(values.shape)}"
        )
    if min(values.shape[:2]) < 1:
        raise PreprocessingError(f"an image array needs pixels, got shape {list(values.shape)}")
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind in "iu":
        if values.min() < 0 or values.max() > 255:
            raise PreprocessingError(
                f"integer pixels must lie in 0..255, got {values.min()}..{values.max()}"
            )
        return values.astype(np.uint8)
    if values.dtype.kind != "f":
        raise PreprocessingError(f"image arrays must hold numbers, got dtype {values.dtype}")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
        raise PreprocessingError(
            "float pixels must be finite and in 0..1 or 0..255 (pass normalised inputs as a "
            f"float torch tensor instead); got {values.min()}..{values.max()}"
        )
    scale = 255.0 if values.max() <= 1.0 else 1.0
    return np.rint(values.astype(np.float64) * scale).astype(np.uint8)


def preprocessing_of(
    value: PreprocessingSpec | Mapping[str, Any] | None, model: Any = None
) -> Preprocessing:
    """A :class:`Preprocessing` from itself, its description (``model.preprocessing``), a
    metadata dict, or (``None``) the model's."""
    if isinstance(value, Preprocessing):
        return value
    if value is None:
        return Preprocessing.from_model(model)
    if isinstance(value, PreprocessingSpec):
        return Preprocessing.from_metadata(value.to_metadata())
    if isinstance(value, Mapping):
        return Preprocessing.from_metadata(value)
    raise PreprocessingError(f"expected a Preprocessing or a dict, got {type(value).__name__}")


__all__ = ["Preprocessing", "PreprocessingError", "pixels_uint8", "preprocessing_of"]
