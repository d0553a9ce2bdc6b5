"""Real models: torchvision's, converted by torchconv.convert, give the outputs (and the gradients) of the originals.
Needs torchvision (no weights are downloaded: weights=None); skipped without it."""

import copy

import pytest
import torch

import torchconv

tv = pytest.importorskip("torchvision", reason="torchvision is not installed (pip install torchvision)")

MODELS = {
    "resnet18": lambda: tv.models.resnet18(weights=None),
    "mobilenet_v2": lambda: tv.models.mobilenet_v2(weights=None),
    "resnext50_32x4d": lambda: tv.models.resnext50_32x4d(weights=None),
    "efficientnet_b0": lambda: tv.models.efficientnet_b0(weights=None),
}


def _convs(model):
    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d)
    return [m for m in model.modules() if isinstance(m, kinds)]


@pytest.mark.parametrize("name", MODELS)
def test_converted_model_matches(name):
    torch.manual_seed(0)
    ref = MODELS[name]().eval()
    model = torchconv.convert(copy.deepcopy(ref))
    convs = _convs(model)
    assert convs and all(type(m).__module__ == "torchconv.nn" for m in convs)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        want, got = ref(x), model(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_transposed_convolution_head():
    """Mask R-CNN's mask head: a ConvTranspose2d (2x upsampling) and a 1x1 Conv2d, forward and backward."""
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    torch.manual_seed(0)
    ref = MaskRCNNPredictor(64, 32, 5)
    model = torchconv.convert(copy.deepcopy(ref))
    assert any(type(m).__name__ == "ConvTranspose2d" and type(m).__module__ == "torchconv.nn" for m in model.modules())
    x = torch.randn(3, 64, 14, 14, requires_grad=True)
    want, got = ref(x), model(x)
    assert got.shape == want.shape == (3, 5, 28, 28)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    g_want = torch.autograd.grad(want.square().sum(), (x, *ref.parameters()))
    g_got = torch.autograd.grad(got.square().sum(), (x, *model.parameters()))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
