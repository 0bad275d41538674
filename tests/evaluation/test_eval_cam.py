"""Class activation maps (CAM, Grad-CAM) against known answers."""

import pytest
import torch

import resnetv2
from resnetv2.errors import ResNetV2Error
from resnetv2.evaluation.cam import cam_method, class_activation_maps, linear_classifier
from resnetv2.viz.cam import display_maps

CORNERS = ("top-right", "bottom-left", "top-left", "bottom-right")


def _batch(corner, names):
    images = [torch.from_numpy(corner.image(name)).float()[None] / 255 for name in names]
    return torch.stack(images)


def _quadrant(heat: torch.Tensor, name: str) -> torch.Tensor:
    h, w = heat.shape[-2:]
    rows = slice(0, h // 2) if name.startswith("top") else slice(h // 2, h)
    cols = slice(w // 2, w) if name.endswith("right") else slice(0, w // 2)
    return heat[..., rows, cols]


@pytest.mark.parametrize(
    ("head", "pool", "method"),
    [("linear", "avg", "cam"), ("dense", "avg", "gradcam"), ("linear", "max", "gradcam")],
)
def test_the_map_lights_up_the_corner_that_holds_the_signal(corner, head, pool, method):
    model = corner.model(head=head, global_pool=pool)
    batch = _batch(corner, CORNERS)
    result = class_activation_maps(model, batch)
    assert result.method == method
    assert result.classes.tolist() == [1, 1, 1, 1]  # the "corner" class wins every image
    assert tuple(result.maps.shape) == (4, 4, 4)  # the last feature map: 16 / 4
    heat = display_maps(result.maps, (16, 16))
    for i, name in enumerate(CORNERS):
        inside = _quadrant(heat[i], name)
        assert heat[i].max() == pytest.approx(1.0)
        # The peak lies in the corner's quadrant, and the other three quadrants stay dark.
        assert inside.max() == pytest.approx(1.0)
        assert heat[i].sum() - inside.sum() < 0.05 * inside.sum(), name


def test_cam_is_the_logit_split_over_locations():
    """Zhou et al. 2016: with average pooling and a linear classifier, the CAM's spatial mean
    plus the bias is the logit, exactly (here on a random net with a 1×1-conv classifier)."""
    torch.manual_seed(0)
    for classifier in ("linear", "conv1x1"):
        model = resnetv2.create_model(8, num_classes=5, widths=[8, 8, 8], classifier=classifier)
        for module in model.modules():  # non-trivial BN statistics
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.bias.data.uniform_(-0.5, 0.5)
        model.head.fc.bias.data.uniform_(-1, 1)
        x = torch.randn(3, 3, 24, 20)
        classes = torch.tensor([4, 0, 2])
        result = class_activation_maps(model, x, classes)
        assert result.method == "cam"
        bias = model.head.fc.bias[classes]
        logits = model.eval()(x).detach()
        expected = logits.gather(1, classes[:, None])[:, 0]
        assert torch.allclose(result.maps.mean(dim=(1, 2)) + bias, expected, atol=1e-5)


def test_gradcam_equals_cam_up_to_scale_on_a_linear_head():
    torch.manual_seed(1)
    model = resnetv2.create_model(8, num_classes=3, widths=[8, 8, 8])
    x = torch.randn(2, 3, 16, 16)
    cam = class_activation_maps(model, x, [0, 2], method="cam").maps
    grad = class_activation_maps(model, x, [0, 2], method="gradcam").maps
    assert torch.allclose(display_maps(cam, (4, 4)), display_maps(grad, (4, 4)), atol=1e-5)


def test_training_flags_restored_and_no_weight_gradients(corner):
    model = corner.model(head="dense")
    model.train()
    model.head.hidden_norm.eval()  # a module the user froze stays frozen
    class_activation_maps(model, _batch(corner, ["top-left"]))
    assert model.training and not model.head.hidden_norm.training
    assert all(p.grad is None for p in model.parameters())


def test_method_choice_and_errors(corner):
    assert cam_method(corner.model()) == "cam"
    assert cam_method(corner.model(head="dense")) == "gradcam"
    assert linear_classifier(corner.model(global_pool="avgmax")) is None
    with pytest.raises(ResNetV2Error, match="not linear"):
        cam_method(corner.model(head="dense"), "cam")
    with pytest.raises(ResNetV2Error, match="unknown CAM method"):
        cam_method(corner.model(), "saliency")
    with pytest.raises(ResNetV2Error, match="class indices"):
        class_activation_maps(corner.model(), _batch(corner, ["top-left"]), [2])
    backbone = resnetv2.create_model(8, num_classes=0, widths=[4, 4, 4])
    with pytest.raises(ResNetV2Error, match="backbone"):
        class_activation_maps(backbone, torch.zeros(1, 3, 8, 8))
