"""Autograd for torch.ops.torchconv.*. The three ops are closed under differentiation: conv2d is bilinear in
(input, weight), and each of its adjoints is again one of the three, so backward of backward (and any higher order)
needs no special case. Each formula is registered with torch.library and also kept as an autograd.Function, which
the eager fast path (_ops.call) applies."""

import torch

ops = torch.ops.torchconv


def _conv_args(stride, padding, dilation, groups, padding_mode, algorithm):
    return (list(stride), list(padding), list(dilation), groups, padding_mode, algorithm)


def call(op, *args):  # the backward formulas call the ops through the eager fast path too
    from ._ops import call as eager_call

    return eager_call(op, *args)


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


AUTOGRAD = {
    ops.conv2d: _register_autograd(ops.conv2d.default, _conv2d_setup, _conv2d_backward),
    ops.conv2d_grad_input: _register_autograd(ops.conv2d_grad_input.default, _grad_input_setup, _grad_input_backward),
    ops.conv2d_grad_weight: _register_autograd(ops.conv2d_grad_weight.default, _grad_weight_setup,
                                               _grad_weight_backward),
}
