"""Confusion-matrix normalisation and plots for few and many classes."""

import numpy as np
import pytest
from PIL import Image

from resnetv2.errors import ResNetV2Error
from resnetv2.viz.confusion import normalise_confusion, plot_confusion_matrix


def test_normalisation():
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    rows = normalise_confusion(counts, "true")
    assert np.allclose(rows.sum(axis=1), [1, 0, 1])  # an empty row stays 0, never NaN
    assert rows[0, 0] == pytest.approx(0.75)
    cols = normalise_confusion(counts, "pred")
    assert np.allclose(cols.sum(axis=0), [1, 1, 1])
    assert normalise_confusion(counts, "all").sum() == pytest.approx(1)
    assert np.array_equal(normalise_confusion(counts, False), counts)
    assert np.array_equal(normalise_confusion(counts, True), rows)
    with pytest.raises(ResNetV2Error):
        normalise_confusion(counts, "rows")


@pytest.mark.parametrize(("n", "normalize"), [(3, False), (100, "true")])
def test_plot_writes_a_png(tmp_path, n, normalize):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, (n, n)) + np.eye(n, dtype=int) * 30
    path = plot_confusion_matrix(
        counts, [f"class {i}" for i in range(n)], tmp_path / "cm.png", normalize=normalize, dpi=60
    )
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) > 200
        lo, hi = image.convert("L").getextrema()
        assert hi - lo > 100


def test_shape_mismatch_is_an_error(tmp_path):
    with pytest.raises(ResNetV2Error, match="3 class names"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "cm.png")


def _title(fig) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


@pytest.mark.parametrize(
    ("normalize", "over"),
    [("true", "over each true class"), ("pred", "over each predicted class"), ("all", "all")],
)
def test_a_normalised_title_says_over_what(normalize, over):
    from resnetv2.viz.confusion import confusion_figure

    counts = np.array([[3, 1], [2, 4]])
    fig = confusion_figure(counts, ["cat", "dog"], normalize=normalize, title="cm · pets")
    title = _title(fig)
    assert title.startswith("cm · pets\nnormalised over") and over in title
    assert "normalised" not in _title(confusion_figure(counts, ["cat", "dog"], title="cm"))


def test_short_labels_stay_horizontal_long_ones_turn():
    from resnetv2.viz.confusion import confusion_figure

    counts = np.eye(3, dtype=int)
    fig = confusion_figure(counts, ["cat", "dog", "bird"])
    assert {t.get_rotation() for t in fig.axes[0].get_xticklabels()} == {0.0}
    long = [f"a-very-long-class-name-{i}" for i in range(3)]
    fig = confusion_figure(counts, long)
    assert {t.get_rotation() for t in fig.axes[0].get_xticklabels()} == {90.0}
    many = confusion_figure(np.eye(30, dtype=int), [str(i) for i in range(30)])
    assert {t.get_rotation() for t in many.axes[0].get_xticklabels()} == {90.0}
