"""The models suite of torchconv.bench: whole models converted (torchconv.convert) against their originals."""

import copy
import sys

import torch

import torchconv

# torchvision's models when it is installed, else stand-ins built from the layer shapes of bench's suites (a
# ResNet-50 bottleneck stage and a MobileNetV2 inverted-residual stack, with batch norm and ReLU between the
# convolutions).
TORCHVISION_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "resnext50_32x4d", "efficientnet_b0")


def stand_in_models():
    """{name: nn.Module} for the models suite without torchvision."""
    nn = torch.nn

    def cbr(c_in, c_out, k, stride=1, groups=1):
        return [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True)]

    resnet = nn.Sequential(*cbr(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1), *cbr(64, 64, 1), *cbr(64, 64, 3),
                           *cbr(64, 256, 1), *cbr(256, 128, 1), *cbr(128, 128, 3, 2), *cbr(128, 512, 1),
                           *cbr(512, 256, 1), *cbr(256, 256, 3, 2), *cbr(256, 1024, 1),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 10))
    mobile = nn.Sequential(*cbr(3, 32, 3, 2), *cbr(32, 32, 3, 1, 32), *cbr(32, 96, 1), *cbr(96, 96, 3, 2, 96),
                           *cbr(96, 144, 1), *cbr(144, 144, 3, 1, 144), *cbr(144, 144, 3, 2, 144), *cbr(144, 192, 1),
                           *cbr(192, 192, 3, 2, 192), *cbr(192, 384, 1), *cbr(384, 384, 3, 1, 384),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(384, 10))
    return {"resnet-like (stand-in)": resnet, "mobilenetv2-like (stand-in)": mobile}


def suite_models():
    """{name: nn.Module} of the models suite: torchvision's (weights=None: nothing is downloaded) or stand-ins."""
    try:
        import torchvision
    except ImportError:
        return stand_in_models()
    return {name: getattr(torchvision.models, name)(weights=None) for name in TORCHVISION_MODELS}


def max_model_error(model, converted, x, backward):
    """(error, ok) of the converted model against float64: its output, and with backward its parameters' gradients,
    each a norm-wise relative error. ok: within the larger of a fixed floor and 4x torch's own error on the same
    values. Checked in eval mode, where BatchNorm is a fixed affine map: at batch 1 a training-mode BatchNorm gradient
    is ill-conditioned (float32 torch against float64 torch: up to 1%). Parameter gradients and norms, because an
    activation within rounding of zero may fall on the other side of a ReLU and move one pixel's input gradient by
    its whole value (seen: resnet-like stand-in, seed 0), while a weight gradient sums every pixel."""
    training = model.training
    model.eval(), converted.eval()

    def run(m, inp):
        with torch.set_grad_enabled(backward):
            y = m(inp)
            if not backward:
                return [y.double()]
            grads = torch.autograd.grad(y.float().square().mean(), list(m.parameters()))
        return [y.detach().double(), torch.cat([g.double().flatten() for g in grads])]

    ref = run(copy.deepcopy(model).double(), x.double())
    floor = 1e-2 if x.dtype in (torch.bfloat16, torch.float16) else 1e-3

    def errors(values):
        norm = torch.linalg.vector_norm
        return [norm(v - r).item() / (norm(r).item() or 1.0) for v, r in zip(values, ref)]

    ours, torchs = errors(run(converted, x)), errors(run(model, x))
    model.train(training), converted.train(training)
    return max(ours), all(e <= max(floor, 4 * t) for e, t in zip(ours, torchs))


def run_models(batch, backward, timer, device, dtype, layout, progress=True):
    """The models suite: each model's inference (or, with backward, one training step: forward, a loss, backward)
    against its converted copy, in alternating blocks (timer: bench's, for the device), on device in dtype and
    memory format layout; the converted model checked first (max_model_error)."""
    rows = []
    models = suite_models()
    for i, (name, model) in enumerate(models.items()):
        if progress:
            print(f"  [models {i + 1}/{len(models)}] {name}", file=sys.stderr, flush=True)
        torch.manual_seed(0)
        model = model.to(device, dtype).train(backward)
        converted = torchconv.convert(copy.deepcopy(model))
        x = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype).contiguous(memory_format=layout)
        if layout == torch.channels_last:
            model, converted = model.to(memory_format=layout), converted.to(memory_format=layout)

        def step(m):
            if not backward:
                return lambda: m(x)
            return lambda: m(x).float().square().mean().backward()

        # Checked before timing: each training-mode call moves BatchNorm's running statistics, and the two sides are
        # timed for different numbers of calls, so after timing their eval-mode outputs would rightly differ.
        err, ok = max_model_error(model, converted, x, backward)
        with torch.set_grad_enabled(backward):
            (t_torch, s_torch), (t_ours, s_ours) = timer([step(model), step(converted)])
        rows.append(dict(layer=name, shape=str(tuple(x.shape)), torch_ms=t_torch * 1e3, torchconv_ms=t_ours * 1e3,
                         ratio=t_torch / t_ours, gflops=float("nan"), workspace_bytes=0, max_err=err,
                         ok=ok, spread=max(s_torch, s_ours)))
    return rows
