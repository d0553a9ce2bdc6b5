"""Fake kernels for torch.ops.torchconv.*: the same checks and shapes as the C++ adapters, on symbolic sizes, so
torch.compile and torch.export can trace the ops (csrc/ops/checks.h; python/torchconv/_geometry.py)."""

import torch

from . import _geometry as G

@torch.library.register_fake("torchconv::conv2d")
def _conv2d_fake(input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm):
    G.check_4d(input, "input")
    G.check_4d(weight, "weight")
    G.check_tensors((input, "input"), (weight, "weight"))
    size = G.output_size(input.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    G.check_algorithm(algorithm)
    if bias is not None:
        G.check_tensors((input, "input"), (bias, "bias"))
        G.check_bias(bias, size[1])
    return input.new_empty(size).contiguous(memory_format=G.output_memory_format(input, weight))


@torch.library.register_fake("torchconv::conv2d_grad_input")
def _conv2d_grad_input_fake(grad_output, weight, input_size, stride, padding, dilation, groups, padding_mode,
                            algorithm):
    G.check_4d(grad_output, "grad_output")
    G.check_4d(weight, "weight")
    G.check_len(input_size, 4, "input_size")
    G.check_tensors((grad_output, "grad_output"), (weight, "weight"))
    G.check_output_size(grad_output,
                        G.output_size(input_size, weight.shape, stride, padding, dilation, groups, padding_mode))
    G.check_algorithm(algorithm)
    fmt = G.output_memory_format(grad_output, weight)
    return grad_output.new_empty(input_size).contiguous(memory_format=fmt)


@torch.library.register_fake("torchconv::conv2d_grad_weight")
def _conv2d_grad_weight_fake(input, grad_output, weight_size, stride, padding, dilation, groups, padding_mode,
                             algorithm):
    G.check_4d(input, "input")
    G.check_4d(grad_output, "grad_output")
    G.check_len(weight_size, 4, "weight_size")
    G.check_tensors((input, "input"), (grad_output, "grad_output"))
    G.check_output_size(grad_output,
                        G.output_size(input.shape, weight_size, stride, padding, dilation, groups, padding_mode))
    G.check_algorithm(algorithm)
    return input.new_empty(weight_size)
