"""nn.Conv1d / nn.Conv2d subclasses whose forward runs torchconv, and convert() to swap them into a model."""

import torch

from . import functional as F

__all__ = ["Conv1d", "Conv2d", "convert"]


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


_REPLACEMENTS = {torch.nn.Conv2d: Conv2d, torch.nn.Conv1d: Conv1d}


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


def convert(module, *, algorithm="auto"):
    """Replace every torch.nn.Conv1d / Conv2d in `module` (recursively, in place) by its torchconv twin.

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
