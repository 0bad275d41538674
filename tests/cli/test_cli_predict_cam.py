"""``resnetv2 predict --cam DIR``: overlays that light up where the known evidence is."""

import numpy as np
from PIL import Image

from resnetv2.cli import main
from resnetv2.loading import save_model


def _weights(tmp_path, model):
    path = tmp_path / "corner.safetensors"
    meta = model.metadata
    save_model(model, path, class_names=meta["class_names"], preprocessing=meta["preprocessing"])
    return path


def _hot_cells(overlay: np.ndarray) -> list[tuple[int, int]]:
    """The cells of the net's 4×4 map (64 px each at 256 px) drawn red rather than blue."""
    pixels = overlay.astype(int)
    hot = pixels[32::64, 32::64, 0] - pixels[32::64, 32::64, 2]
    return [tuple(int(v) for v in cell) for cell in np.argwhere(hot > 40)]


def test_cam_overlays_light_up_the_corner(tmp_path, corner, capsys):
    weights = _weights(tmp_path, corner.model())
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(corner.image("top-right")).save(images / "a.png")
    Image.fromarray(corner.image("bottom-left")).save(images / "b.png")
    cams = tmp_path / "cams"
    argv = ["predict", str(weights), str(images / "a.png"), str(tmp_path / "missing.png")]
    code = main([*argv, str(images / "b.png"), "--cam", str(cams), "-q"])
    assert code == 1  # the missing file is a failed row; the others are mapped
    err = capsys.readouterr().err
    assert f"class activation maps of 2 images → {cams}" in err
    assert sorted(p.name for p in cams.iterdir()) == ["00001_a.png", "00003_b.png"]
    with Image.open(cams / "00001_a.png") as image:
        assert image.size == (256, 256)
        assert _hot_cells(np.asarray(image.convert("RGB"))) == [(0, 3)]
    with Image.open(cams / "00003_b.png") as image:
        assert _hot_cells(np.asarray(image.convert("RGB"))) == [(3, 0)]


def test_gradcam_for_the_dense_head(tmp_path, corner, capsys):
    weights = _weights(tmp_path, corner.model(head="dense"))
    Image.fromarray(corner.image("bottom-right", block=8)).save(tmp_path / "c.png")
    assert (
        main(["predict", str(weights), str(tmp_path / "c.png"), "--cam", str(tmp_path / "o")]) == 0
    )
    with Image.open(tmp_path / "o" / "00001_c.png") as image:
        assert _hot_cells(np.asarray(image.convert("RGB"))) == [(2, 2), (2, 3), (3, 2), (3, 3)]


def test_cam_folder_is_not_overwritten_without_force(tmp_path, corner, capsys):
    weights = _weights(tmp_path, corner.model())
    Image.fromarray(corner.image()).save(tmp_path / "a.png")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    argv = ["predict", str(weights), str(tmp_path / "a.png"), "--cam", str(taken)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--force" in err
    assert main([*argv, "--force"]) == 0
    assert (taken / "mine.txt").read_text() == "keep" and (taken / "00001_a.png").is_file()


def test_a_cam_folder_that_cannot_be_made_fails_before_any_row(tmp_path, corner, capsys):
    weights = _weights(tmp_path, corner.model())
    Image.fromarray(corner.image()).save(tmp_path / "a.png")
    (tmp_path / "file").write_text("not a folder")
    argv = ["predict", str(weights), str(tmp_path / "a.png"), "--cam", str(tmp_path / "file/x")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err
