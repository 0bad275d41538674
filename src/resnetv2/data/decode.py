"""The one decoding policy: an image file in, a uint8 RGB ``[3, H, W]`` tensor out.

Every image the project reads goes through :func:`decode_image` (promise 4 of
docs/reliability.md). Each known hazard has a defined outcome — fixed up, or a typed
:class:`BadImageError` naming the file — and never a silently grey, black or clipped image.
The policy is tabulated in ``docs/data.md``; keep the two in step.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from resnetv2.data.names import printable_name
from resnetv2.data.resize import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS  # re-exported
from resnetv2.data.resize import Interpolation, resize_pil, scaled_target
from resnetv2.errors import DataError

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".bmp",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
"""File name endings (lower case) that folder scans treat as images."""


DEFAULT_BACKGROUND = (255, 255, 255)
"""Colour that transparent pixels are composited onto: white (see ``docs/data.md``)."""

DECODE_POLICY_VERSION = 1
"""Bump when a change to this module can change decoded pixels (invalidates caches)."""

BadImageKind = Literal["empty", "unreadable", "not_an_image", "too_large", "corrupt", "unsupported"]

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_KEYED_TRANSPARENCY_MODES = frozenset({"P", "L", "RGB"})


class BadImageError(DataError):
    """A file that the decoding policy refuses, with the file and the reason.

    ``kind`` is one of ``empty``, ``unreadable``, ``not_an_image``, ``too_large``, ``corrupt``,
    ``unsupported`` so that summaries can count skipped files by cause.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: BadImageKind = "corrupt"):
        self.path = os.fspath(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Keeps the three fields when the error crosses a process boundary.
        return (type(self), (self.path, self.reason, self.kind))


@dataclass(frozen=True)
class DecodeOptions:
    """Knobs of the decoding policy that a user may change.

    ``max_pixels`` bounds width × height of any image (decompression-bomb guard). Pillow
    refuses images above twice its own ``PIL.Image.MAX_IMAGE_PIXELS`` before we see them, so a
    limit above that needs Pillow's raised too. ``background`` is the RGB colour transparent
    pixels are composited onto.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    background: tuple[int, int, int] = DEFAULT_BACKGROUND

    def __post_init__(self) -> None:
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int):
            raise TypeError(f"max_pixels must be an int, got {type(self.max_pixels).__name__}")
        if self.max_pixels < 1:
            raise DataError(f"max_pixels must be a positive pixel count, got {self.max_pixels}")
        background = tuple(self.background)
        if len(background) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in background
        ):
            raise DataError(
                f"background must be three ints in 0..255 (an RGB colour), got {self.background!r}"
            )
        object.__setattr__(self, "background", background)

    def token(self) -> str:
        """A string that changes whenever the decoded pixels could change (cache keys)."""
        return (
            f"policy={DECODE_POLICY_VERSION};max_pixels={self.max_pixels};"
            f"background={self.background}"
        )


def decode_image(
    path: str | os.PathLike,
    options: DecodeOptions | None = None,
    *,
    size: tuple[int, int] | None = None,
    info: dict | None = None,
    interpolation: Interpolation = "bilinear",
    crop_pct: float = 1.0,
) -> torch.Tensor:
    """Decode ``path`` into a uint8 RGB tensor of shape ``[3, H, W]`` following the policy.

    With ``size=(H, W)`` the image is resized by the project's one rule (cover the target,
    then centre-crop; ``interpolation`` and ``crop_pct`` as in
    :func:`resnetv2.data.resize.resize_pil`) so that every output has that shape.
    When ``info`` is a dict it receives ``format``, ``mode`` and the decoded ``size`` before
    any resize. Raises :class:`BadImageError` for every file the policy refuses; never
    returns a placeholder.
    """
    options = options or DecodeOptions()
    path = os.fspath(path)
    try:
        nbytes = regular_file_size(path)
    except OSError as exc:
        raise BadImageError(
            path, f"cannot read file ({exc.strerror or exc})", "unreadable"
        ) from exc
    if nbytes == 0:
        raise BadImageError(path, "empty file (0 bytes)", "empty")

    # Pillow warns between its limit and twice its limit and only errors above; turning the
    # warning into an error makes both cases a BadImageError instead of a decoded bomb.
    bomb_action = "error" if _pil_limit_covers(options.max_pixels) else "ignore"
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # Pillow's notes on this file, named below
            warnings.simplefilter(bomb_action, Image.DecompressionBombWarning)
            with Image.open(path) as img:
                resize = None if size is None else (tuple(size), interpolation, crop_pct)
                return _decode_opened(img, path, options, resize, info)
    except (BadImageError, MemoryError):  # running out of memory is ours, not the file's
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(path, f"decompression bomb refused: {exc}", "too_large") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(path, "not a recognised image format", "not_an_image") from exc
    except IsADirectoryError as exc:
        raise BadImageError(path, "is a directory, not an image file", "unreadable") from exc
    except PermissionError as exc:
        raise BadImageError(path, f"cannot read file ({exc.strerror})", "unreadable") from exc
    except Exception as exc:  # any decoder failure means this file is bad
        message = str(exc) or type(exc).__name__
        raise BadImageError(
            path, f"truncated or corrupt image data ({type(exc).__name__}: {message})", "corrupt"
        ) from exc
    finally:
        _name_the_file(caught, path)


def _name_the_file(caught: list[warnings.WarningMessage], path: str) -> None:
    """Warn again with the file's name: Pillow's own warnings ("Corrupt EXIF data…") do not
    say which of thousands of files they are about. Repeats are shown once."""
    for message in dict.fromkeys(str(w.message) for w in caught):
        category = next(w.category for w in caught if str(w.message) == message)
        warnings.warn(f"{printable_name(path)}: {message}", category, stacklevel=3)


def regular_file_size(path: str | os.PathLike) -> int:
    """The size of ``path``, or ``OSError`` when it is not a regular file (after symlinks).

    Opening a FIFO blocks until a writer appears and a device may never end, so nothing is
    opened before this check passes.
    """
    info = os.stat(path)
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):  # folders: see below
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device?)", path)
    return info.st_size


def probe_image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """Return ``(H, W)`` as :func:`decode_image` would see it (after EXIF rotation), reading
    only the header; ``None`` when the header cannot be read (or it is no regular file)."""
    try:
        regular_file_size(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                try:
                    orientation = img.getexif().get(0x0112, 1)
                except Exception:  # unreadable EXIF is ignored, as in decoding
                    orientation = 1
    except Exception:  # a bad file has no size; decoding reports why later
        return None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return height, width


def _pil_limit_covers(max_pixels: int) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and max_pixels <= limit


def _decode_opened(
    img: Image.Image,
    path: str,
    options: DecodeOptions,
    resize: tuple[tuple[int, int], Interpolation, float] | None,
    info: dict | None,
) -> torch.Tensor:
    width, height = img.size
    if width * height > options.max_pixels:
        raise BadImageError(
            path,
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{options.max_pixels:,} (DecodeOptions.max_pixels); refused as a possible "
            "decompression bomb",
            "too_large",
        )
    # Animated GIF/WebP/APNG: Image.open leaves the first frame selected; it is the one used.
    if resize is not None and img.format == "JPEG":
        # Decoding at a reduced DCT scale is much faster for large photos; asking for twice
        # the target keeps the later antialiased resize in charge of quality.
        side = 2 * max(scaled_target(resize[0], resize[2]))
        img.draft(None, (side, side))
    img.load()
    if info is not None:
        info.update(format=img.format, mode=img.mode)
    img = _apply_exif_orientation(img)
    rgb = to_rgb_array(img, path, options)
    if info is not None:
        info["size"] = rgb.shape[:2]
    if resize is not None and (rgb.shape[:2] != resize[0] or resize[2] != 1.0):
        rgb = np.asarray(resize_pil(Image.fromarray(rgb), *resize))
    # A copy: arrays viewed from Pillow images are read-only.
    return torch.from_numpy(rgb.transpose(2, 0, 1).copy())


def _apply_exif_orientation(img: Image.Image) -> Image.Image:
    try:
        if img.getexif().get(0x0112, 1) == 1:
            return img  # exif_transpose would return a full-size copy of an upright image
        rotated = ImageOps.exif_transpose(img)
    except Exception:  # malformed EXIF: the pixels are used as stored
        return img
    return rotated if rotated is not None else img


def to_rgb_array(img: Image.Image, path: str, options: DecodeOptions) -> np.ndarray:
    """Map any Pillow mode to an ``[H, W, 3]`` uint8 array, or raise BadImageError."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        gray = _wide_int_to_uint8(np.asarray(img), mode, path)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        gray = _float_to_uint8(np.asarray(img, dtype=np.float32), path)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "1":
        img = img.convert("L")
        mode = "L"
    if mode in _ALPHA_MODES or (mode in _KEYED_TRANSPARENCY_MODES and "transparency" in img.info):
        return _composite(img, options.background)
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(img))
    if mode == "RGB":
        return np.asarray(img)
    try:
        return np.asarray(img.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise BadImageError(path, f"unsupported pixel mode {mode!r}", "unsupported") from exc


def _wide_int_to_uint8(values: np.ndarray, mode: str, path: str) -> np.ndarray:
    """Scale 16-bit samples (or 32-bit ints holding 16-bit data) to 0..255 by the full range.

    ``Image.convert('L')`` would clip every value above 255 to white; dividing by
    65535/255 with rounding keeps the whole tonal range.
    """
    values = values.astype(np.int64, copy=False)
    if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise BadImageError(
            path,
            f"32-bit integer image with values {values.min()}..{values.max()} outside the "
            "16-bit range 0..65535; no defined display range",
            "unsupported",
        )
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def _float_to_uint8(values: np.ndarray, path: str) -> np.ndarray:
    if not np.isfinite(values).all() or (values.size and (values.min() < 0 or values.max() > 1)):
        raise BadImageError(
            path,
            "floating-point image with values outside 0..1 (or NaN/Inf); no defined display range",
            "unsupported",
        )
    return np.rint(values * 255).astype(np.uint8)


COMPOSITE_ROWS = 256
"""Rows composited at a time: the RGBA copies exist for one strip, not the whole image."""


def _composite(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """``img`` over an opaque ``background``, as ``[H, W, 3]`` uint8.

    Strip by strip into one output array: done whole, the RGBA conversion, the canvas, the
    composite and its RGB conversion were four more full-size images (an 88-Mpixel PNG took
    2.8 GB). Compositing is per pixel, so the strips give the same pixels.
    """
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, COMPOSITE_ROWS):
        bottom = min(height, top + COMPOSITE_ROWS)
        strip = img.crop((0, top, width, bottom)).convert("RGBA")
        canvas = Image.new("RGBA", strip.size, (*background, 255))
        out[top:bottom] = np.asarray(Image.alpha_composite(canvas, strip).convert("RGB"))
    return out


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one; otherwise Pillow's
    ``R = (255 - C)(255 - K) / 255`` formula (Adobe-inverted JPEGs are already un-inverted by
    Pillow's JPEG decoder)."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(img, source, target, outputMode="RGB")
            if converted is not None:
                return converted
        except Exception:  # a broken profile falls back to the plain formula
            pass
    return img.convert("RGB")
