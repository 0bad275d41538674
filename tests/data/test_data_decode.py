"""Each hazard of the decoding policy gets its documented outcome (docs/reliability.md, promise 4)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from resnetv2.data.decode import BadImageError, DecodeOptions, decode_image, probe_image_size


def test_plain_rgb_png_is_exact(tmp_path, fakes):
    pixels = fakes.random_rgb(5, 7, seed=1)
    out = decode_image(fakes.save_image(tmp_path / "a.png", pixels))
    assert out.dtype == torch.uint8 and out.shape == (3, 5, 7)
    assert torch.equal(out, torch.from_numpy(pixels).permute(2, 0, 1))


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(BadImageError) as info:
        decode_image(path)
    assert info.value.kind == "empty" and info.value.path == str(path)
    assert "0 bytes" in str(info.value) and str(path) in str(info.value)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(BadImageError) as info:
        decode_image(path)
    assert info.value.kind == "not_an_image"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file(tmp_path, suffix, fakes):
    full = fakes.save_image(tmp_path / f"full{suffix}", fakes.random_rgb(64, 64, seed=2))
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError) as info:
        decode_image(cut)
    assert info.value.kind == "corrupt" and "truncated" in info.value.reason


def test_global_pillow_setting_is_not_changed_to_accept_truncation(tmp_path):
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_limit_is_configurable(tmp_path, fakes):
    path = fakes.save_image(tmp_path / "big.png", fakes.random_rgb(40, 40, seed=3))
    assert decode_image(path, DecodeOptions(max_pixels=1600)).shape == (3, 40, 40)
    with pytest.raises(BadImageError) as info:
        decode_image(path, DecodeOptions(max_pixels=1599))
    assert info.value.kind == "too_large" and "1,600" in info.value.reason


def test_decompression_bomb_header_is_refused_without_decoding(tmp_path, fakes):
    # A 100,000 x 100,000 PNG whose header alone would demand 10 GB of pixels.
    path = tmp_path / "bomb.png"
    path.write_bytes(fakes.png_bytes(100_000, 100_000, 1, 0, b"\x00" * 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BadImageError) as info:
            decode_image(path)
    assert info.value.kind == "too_large"


@pytest.mark.parametrize("pil_limit", [1000, 3000])
def test_pillow_bomb_error_and_warning_become_bad_image_errors(
    tmp_path, monkeypatch, pil_limit, fakes
):
    # 4096 pixels: above twice 1000 (Pillow raises) and between 3000 and 6000 (Pillow warns).
    path = fakes.save_image(tmp_path / "a.png", fakes.random_rgb(64, 64, seed=4))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pil_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(BadImageError) as info:
            decode_image(path, DecodeOptions(max_pixels=500))
    assert info.value.kind == "too_large"


def test_cmyk_is_converted_not_reinterpreted(tmp_path):
    cmyk = np.zeros((4, 4, 4), dtype=np.uint8)
    cmyk[0] = (0, 255, 255, 0)  # red
    cmyk[1] = (0, 0, 0, 0)  # white
    cmyk[2] = (0, 0, 0, 255)  # black
    cmyk[3] = (255, 0, 0, 128)  # dark cyan
    path = tmp_path / "cmyk.tif"
    Image.fromarray(cmyk, mode="CMYK").save(path)
    out = decode_image(path)
    assert out[:, 0, 0].tolist() == [255, 0, 0]
    assert out[:, 1, 0].tolist() == [255, 255, 255]
    assert out[:, 2, 0].tolist() == [0, 0, 0]
    assert out[:, 3, 0].tolist() == [0, 127, 127]


def test_cmyk_jpeg_decodes_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    out = decode_image(path).float().mean(dim=(1, 2))
    assert out[0] > 230 and out[1] < 30 and out[2] < 30


def test_rgba_is_composited_on_white(tmp_path, fakes):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # transparent black
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black
    out = decode_image(fakes.save_image(tmp_path / "a.png", rgba))
    assert out[:, 0, 0].tolist() == [255, 255, 255]
    assert out[:, 0, 1].tolist() == [255, 0, 0]
    assert all(abs(v - 127) <= 1 for v in out[:, 0, 2].tolist())


def test_background_colour_is_an_option(tmp_path, fakes):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    out = decode_image(
        fakes.save_image(tmp_path / "a.png", rgba), DecodeOptions(background=(0, 64, 0))
    )
    assert out[:, 0, 0].tolist() == [0, 64, 0]
    with pytest.raises(ValueError, match="three ints"):
        DecodeOptions(background=(0, 300, 0))


def test_la_is_composited_on_white(tmp_path, fakes):
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[0, 0] = (10, 255)
    out = decode_image(fakes.save_image(tmp_path / "a.png", la))
    assert out[:, 0, 0].tolist() == [10, 10, 10]
    assert out[:, 1, 1].tolist() == [255, 255, 255]


def test_palette_with_transparency_is_composited(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    path = tmp_path / "p.png"
    img.save(path, transparency=0)
    out = decode_image(path)
    assert out[:, 0, 0].tolist() == [255, 255, 255]  # transparent index: background
    assert out[:, 0, 1].tolist() == [0, 0, 255]


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    out = decode_image(path)
    expected = [0, round(1000 * 255 / 65535), 128, 255]
    assert out[0, 0].tolist() == expected
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])


def test_sixteen_bit_rgb_png_uses_the_full_range(tmp_path, fakes):
    pixels = [(0x8000, 0xFFFF, 0x00FF)]
    rows = b"\x00" + b"".join(v.to_bytes(2, "big") for rgb in pixels for v in rgb)
    path = tmp_path / "rgb16.png"
    path.write_bytes(fakes.png_bytes(1, 1, 16, 2, rows))
    assert decode_image(path)[:, 0, 0].tolist() == [128, 255, 0]


def test_32_bit_integer_image(tmp_path):
    path = tmp_path / "i32.tif"
    Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I").save(path)
    assert decode_image(path)[0, 0].tolist() == [0, 255]
    bad = tmp_path / "i32_wide.tif"
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32), mode="I").save(bad)
    with pytest.raises(BadImageError) as info:
        decode_image(bad)
    assert info.value.kind == "unsupported"


def test_exif_rotation_is_applied(tmp_path):
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :16] = (255, 0, 0)  # left half red
    stored[:, 16:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    out = decode_image(path)
    assert out.shape == (3, 32, 16)
    top, bottom = out[:, :12].float().mean(dim=(1, 2)), out[:, 20:].float().mean(dim=(1, 2))
    assert top[0] > 200 and top[2] < 60  # the stored left half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert probe_image_size(path) == (32, 16)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_image_uses_first_frame(tmp_path, suffix):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / f"anim{suffix}"
    extra = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, **extra)
    assert Image.open(path).n_frames == 2
    out = decode_image(path).float().mean(dim=(1, 2))
    assert out[0] > 240 and out[2] < 15


def test_grayscale_and_one_bit_become_rgb(tmp_path, fakes):
    gray = decode_image(fakes.save_image(tmp_path / "l.png", np.full((3, 3), 77, np.uint8)))
    assert gray.shape == (3, 3, 3) and bool((gray == 77).all())
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "b.png")
    out = decode_image(tmp_path / "b.png")
    assert out[:, 0, 0].tolist() == [0, 0, 0] and out[:, 0, 1].tolist() == [255, 255, 255]


def test_resize_keeps_aspect_and_centre_crops(tmp_path, fakes):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 10:30] = 255  # a white centre band, the part the crop keeps
    out = decode_image(fakes.save_image(tmp_path / "wide.png", pixels), size=(10, 10))
    assert out.shape == (3, 10, 10)
    assert out.float().mean() > 240


def test_info_reports_size_before_resize(tmp_path, fakes):
    info: dict = {}
    decode_image(
        fakes.save_image(tmp_path / "a.png", fakes.random_rgb(6, 9, 0)), size=(4, 4), info=info
    )
    assert tuple(info["size"]) == (6, 9) and info["format"] == "PNG"


def test_bad_image_error_survives_pickling(tmp_path):
    error = BadImageError(tmp_path / "x.jpg", "empty file (0 bytes)", "empty")
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.path, clone.reason, clone.kind) == (error.path, error.reason, error.kind)


def test_directory_named_like_an_image(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(BadImageError) as info:
        decode_image(tmp_path / "folder.jpg")
    assert info.value.kind == "unreadable"
