"""Pins the Python twin (_geometry.py) to the C++ rules (common/geometry.h): same shapes, same errors."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchconv import _geometry as G


def cpp_outcome(a):
    x = torch.zeros(a["N"], a["C"], a["H"], a["W"])
    w = torch.zeros(a["K"], a["Cg"], a["kh"], a["kw"])
    try:
        y = torch.ops.torchconv.conv2d(x, w, None, a["stride"], a["pad"], a["dil"], a["groups"], a["mode"], "auto")
        return tuple(y.shape)
    except RuntimeError as e:
        return str(e)[str(e).index("torchconv:"):]


def py_outcome(a):
    try:
        return G.output_size((a["N"], a["C"], a["H"], a["W"]), (a["K"], a["Cg"], a["kh"], a["kw"]), a["stride"],
                             a["pad"], a["dil"], a["groups"], a["mode"])
    except RuntimeError as e:
        return str(e)


small = st.integers(-1, 4)
args = st.fixed_dictionaries(dict(
    N=st.integers(0, 2), C=st.integers(0, 6), H=st.integers(0, 9), W=st.integers(0, 9),
    K=st.integers(0, 6), Cg=st.integers(0, 3), kh=st.integers(0, 5), kw=st.integers(0, 5),
    stride=st.lists(small, min_size=2, max_size=2), dil=st.lists(small, min_size=2, max_size=2),
    pad=st.lists(small, min_size=4, max_size=4), groups=small,
    mode=st.sampled_from(G.PADDING_MODES + ("edge",)),
))


@settings(max_examples=400, deadline=None)
@given(args)
def test_python_twin_matches_cpp(a):
    assert py_outcome(a) == cpp_outcome(a)


@settings(max_examples=100, deadline=None)
@given(args)
def test_fake_kernel_matches_cpp(a):
    """The fake kernel (meta tensors) gives the real kernel's shape, or its error."""
    x = torch.zeros(a["N"], a["C"], a["H"], a["W"], device="meta")
    w = torch.zeros(a["K"], a["Cg"], a["kh"], a["kw"], device="meta")
    try:
        got = tuple(torch.ops.torchconv.conv2d(x, w, None, a["stride"], a["pad"], a["dil"], a["groups"], a["mode"],
                                               "auto").shape)
    except RuntimeError as e:
        got = str(e)[str(e).index("torchconv:"):]
    assert got == cpp_outcome(a)
