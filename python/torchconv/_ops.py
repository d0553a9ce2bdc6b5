"""Fake kernels and autograd for torch.ops.torchconv.*, and call(), the way torchconv's own code calls them.

The three ops are closed under differentiation: conv2d is bilinear in (input, weight), and each of its adjoints is
again one of the three, so backward of backward (and any higher order) needs no special case.
"""

import torch

from . import _geometry as G

ops = torch.ops.torchconv


def _conv_args(stride, padding, dilation, groups, padding_mode, algorithm):
    return (list(stride), list(padding), list(dilation), groups, padding_mode, algorithm)


# ---- fake kernels: the same checks and shapes as the C++ adapters, on symbolic sizes ----------------------------

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


# ---- autograd ---------------------------------------------------------------------------------------------------

def _save(ctx, a, b, args):
    ctx.save_for_backward(a, b)
    ctx.args = _conv_args(*args)


def _conv2d_setup(ctx, inputs, output):
    input, weight, bias, *args = inputs
    _save(ctx, input, weight, args)
    ctx.has_bias = bias is not None


def _conv2d_backward(ctx, grad):
    input, weight = ctx.saved_tensors
    need = ctx.needs_input_grad
    gx = call(ops.conv2d_grad_input, grad, weight, list(input.shape), *ctx.args) if need[0] else None
    gw = call(ops.conv2d_grad_weight, input, grad, list(weight.shape), *ctx.args) if need[1] else None
    gb = grad.sum((0, 2, 3)) if ctx.has_bias and need[2] else None
    return gx, gw, gb, None, None, None, None, None, None


def _grad_input_setup(ctx, inputs, output):
    grad_output, weight, _input_size, *args = inputs
    _save(ctx, grad_output, weight, args)


def _grad_input_backward(ctx, grad):
    # conv2d_grad_input(gy, w) is bilinear; its adjoints are conv2d(., w) in gy and conv2d_grad_weight(., gy) in w.
    grad_output, weight = ctx.saved_tensors
    need = ctx.needs_input_grad
    d_gy = call(ops.conv2d, grad, weight, None, *ctx.args) if need[0] else None
    d_w = call(ops.conv2d_grad_weight, grad, grad_output, list(weight.shape), *ctx.args) if need[1] else None
    return d_gy, d_w, None, None, None, None, None, None, None


def _grad_weight_setup(ctx, inputs, output):
    input, grad_output, _weight_size, *args = inputs
    _save(ctx, input, grad_output, args)


def _grad_weight_backward(ctx, grad):
    # conv2d_grad_weight(x, gy) is bilinear; its adjoints are conv2d_grad_input(gy, .) in x and conv2d(x, .) in gy.
    input, grad_output = ctx.saved_tensors
    need = ctx.needs_input_grad
    d_x = call(ops.conv2d_grad_input, grad_output, grad, list(input.shape), *ctx.args) if need[0] else None
    d_gy = call(ops.conv2d, input, grad, None, *ctx.args) if need[1] else None
    return d_x, d_gy, None, None, None, None, None, None, None


def _register_autograd(op, setup_context, backward):
    """Registers op's autograd with torch.library, and returns the same formula as an autograd.Function for call()."""
    torch.library.register_autograd(op, backward, setup_context=setup_context)

    # The old-style forward(ctx, ...): with a separate setup_context, Function.apply binds the arguments through
    # inspect.signature on every call (~15 us).
    def forward(ctx, *args):
        with torch._C._AutoDispatchBelowAutograd():
            output = op(*args)
        setup_context(ctx, args, output)
        return output

    return type(f"{op._opname}_autograd", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)})


_AUTOGRAD = {
    ops.conv2d: _register_autograd(ops.conv2d.default, _conv2d_setup, _conv2d_backward),
    ops.conv2d_grad_input: _register_autograd(ops.conv2d_grad_input.default, _grad_input_setup, _grad_input_backward),
    ops.conv2d_grad_weight: _register_autograd(ops.conv2d_grad_weight.default, _grad_weight_setup,
                                               _grad_weight_backward),
}


def call(op, *args):
    """op(*args), with the op's autograd done in this module rather than through the dispatcher when it is safe to.

    torch.library.register_autograd's kernel is Python behind the dispatcher: each call crosses into Python, rebuilds
    the schema's argument list (fill_defaults) and redispatches, about 40 us for a forward with a graph and 10 us for
    a call with nothing to record (pytorch/pytorch#177109); that is as much as a small layer. In eager mode call()
    runs the same formula as an autograd.Function, or goes straight to the kernel when autograd has nothing to record.
    Under torch.compile / export tracing and functorch transforms it calls the op, so they see the registered path.
    """
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return op(*args)
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return _AUTOGRAD[op].apply(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)
