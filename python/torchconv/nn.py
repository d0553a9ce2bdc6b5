"""nn.Conv1d / nn.Conv2d subclasses whose forward runs torchconv, and convert() to swap them into a model."""

import torch

from . import functional as F

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "convert"]


class _TorchconvConv:
    """Mixin: the torch constructor, plus padding_mode 'symmetric' (which torch does not know) and `algorithm`."""

    def __init__(self, *args, padding_mode="zeros", algorithm="auto", **kwargs):
        # torch's constructor refuses 'symmetric'; it only uses padding_mode to validate and to store it.
        super().__init__(*args, padding_mode="zeros" if padding_mode == "symmetric" else padding_mode, **kwargs)
        self.padding_mode = padding_mode
        self.algorithm = algorithm

    def extra_repr(self):
        return super().extra_repr() + ("" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}")


class Conv2d(_TorchconvConv, torch.nn.Conv2d):
    """torch.nn.Conv2d computed by torchconv: same constructor, parameters and state_dict."""

    def _conv_forward(self, input, weight, bias):
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups,
                        padding_mode=self.padding_mode, algorithm=self.algorithm)


class Conv1d(_TorchconvConv, torch.nn.Conv1d):
    """torch.nn.Conv1d computed by torchconv: same constructor, parameters and state_dict."""

    def _conv_forward(self, input, weight, bias):
        return F.conv1d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups,
                        padding_mode=self.padding_mode, algorithm=self.algorithm)


class _TorchconvConvTranspose:
    """Mixin: the torch constructor, plus `algorithm`; forward(input, output_size=None) as torch's."""

    def __init__(self, *args, algorithm="auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.algorithm = algorithm

    def extra_repr(self):
        return super().extra_repr() + ("" if self.algorithm == "auto" else f", algorithm={self.algorithm!r}")

    def forward(self, input, output_size=None):
        if self.padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for {type(self).__name__}")
        dims = len(self.kernel_size)
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size,
                                              dims, self.dilation)
        fn = F.conv_transpose2d if dims == 2 else F.conv_transpose1d
        return fn(input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                  self.dilation, algorithm=self.algorithm)


class ConvTranspose2d(_TorchconvConvTranspose, torch.nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d computed by torchconv: same constructor, parameters and state_dict."""


class ConvTranspose1d(_TorchconvConvTranspose, torch.nn.ConvTranspose1d):
    """torch.nn.ConvTranspose1d computed by torchconv: same constructor, parameters and state_dict."""


_REPLACEMENTS = {torch.nn.Conv2d: Conv2d, torch.nn.Conv1d: Conv1d, torch.nn.ConvTranspose2d: ConvTranspose2d,
                 torch.nn.ConvTranspose1d: ConvTranspose1d}


def _converted(module, algorithm):
    cls = _REPLACEMENTS.get(type(module))
    if cls is None:
        return None
    new = cls.__new__(cls)
    # Share the state itself (the same Parameter objects, buffers, hooks, training flag), so an optimizer that
    # already holds the parameters keeps working, and device and dtype are unchanged.
    new.__dict__.update(module.__dict__)
    new.algorithm = algorithm
    return new


def convert(module: torch.nn.Module, *, algorithm: str = "auto") -> torch.nn.Module:
    """Replace every torch.nn.Conv1d / Conv2d / ConvTranspose1d / ConvTranspose2d in `module` (recursively, in
    place) by its torchconv twin.

    Returns the module (a new one only if `module` is itself a convolution).
    """
    root = _converted(module, algorithm)
    if root is not None:
        return root
    for name, child in module.named_children():
        new = _converted(child, algorithm)
        if new is not None:
            setattr(module, name, new)
        else:
            convert(child, algorithm=algorithm)
    return module
