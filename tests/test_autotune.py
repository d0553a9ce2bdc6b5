"""algorithm="autotune" (torchconv.autotune) and the algorithm list it runs: the fastest kernel of each pass, timed
once per call shape, cached, reported by explain, saved and loaded; nothing timed under torch.compile."""

import pytest
import torch
import torch.nn.functional as F

import torchconv
from torchconv import autotune


@pytest.fixture(autouse=True)
def empty_cache():
    autotune.clear()
    yield
    autotune.clear()


def forced_winner(monkeypatch, winners):
    """Makes the named kernels time fastest, whatever the machine does."""
    monkeypatch.setattr(autotune, "_time", lambda name, fn, sync: (fn(), 0.0 if name in winners else 1.0)[1])


def test_autotune_runs_the_kernels_timed_fastest(monkeypatch):
    forced_winner(monkeypatch, {"im2col/cols_any_forward", "direct/dense_nchw_grad_input",
                                "direct/dense_nchw_grad_weight"})
    x = torch.randn(3, 8, 9, 11, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torchconv.conv2d(x, w, None, 1, 1, algorithm="autotune")
    gy = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, w), gy)
    ref = F.conv2d(x, w, None, 1, 1)
    torch.testing.assert_close(y, ref)
    for a, b in zip((gx, gw), torch.autograd.grad(ref, (x, w), gy)):
        torch.testing.assert_close(a, b)
    plan = torchconv.explain(x.shape, w.shape, 1, 1, algorithm="autotune", dtype=torch.float64)
    assert [plan["kernel"], plan["grad_input"]["kernel"], plan["grad_weight"]["kernel"]] == [
        "im2col/cols_any_forward", "direct/dense_nchw_grad_input", "direct/dense_nchw_grad_weight"]
    assert all(p["reason"].startswith("autotune: the fastest") for p in (plan, plan["grad_input"], plan["grad_weight"]))
    # auto would have run other kernels here: the tuned choice is what runs.
    assert torchconv.explain(x.shape, w.shape, 1, 1, dtype=torch.float64)["kernel"] != "im2col/cols_any_forward"


def test_inference_times_the_forward_only_and_a_new_key_is_timed_again(monkeypatch):
    timed = []
    monkeypatch.setattr(autotune, "_time", lambda name, fn, sync: (timed.append(name), fn(), 1.0)[2])
    x, w = torch.randn(2, 4, 8, 8), torch.randn(16, 4, 3, 3)
    with torch.no_grad():
        torchconv.conv2d(x, w, padding=1, algorithm="autotune")
    assert timed and all(n.endswith("_forward") for n in timed)
    names = {k["name"] for k in torchconv.kernels() if k["pass"] == "forward"}
    assert set(timed) <= names and "direct/igemm_any_forward" in timed
    plan = torchconv.explain(x.shape, w.shape, padding=1, algorithm="autotune")
    assert "not timed yet" in plan["grad_weight"]["reason"]
    n = len(timed)
    torchconv.conv2d(x, w, padding=1, algorithm="autotune")  # cached: nothing timed
    assert len(timed) == n
    torchconv.conv2d(x.double(), w.double(), padding=1, algorithm="autotune")  # another dtype: another key
    assert len(timed) > n


def test_save_and_load(tmp_path, monkeypatch):
    forced_winner(monkeypatch, {"direct/dense_nchw_forward"})
    x, w = torch.randn(1, 4, 10, 10), torch.randn(16, 4, 3, 3)
    torchconv.conv2d(x, w, padding=1, algorithm="autotune")
    path = tmp_path / "choices.json"
    autotune.save(str(path))
    autotune.clear()
    monkeypatch.setattr(autotune, "_tune", lambda *a: pytest.fail("a loaded choice is not timed again"))
    assert autotune.load(str(path)) == 1
    assert torchconv.explain(x.shape, w.shape, padding=1, algorithm="autotune")["kernel"] == "direct/dense_nchw_forward"
    torch.testing.assert_close(torchconv.conv2d(x, w, padding=1, algorithm="autotune"), F.conv2d(x, w, padding=1),
                               rtol=1e-5, atol=1e-4)


def test_compiled_autotune_times_nothing(monkeypatch):
    monkeypatch.setattr(autotune, "_tune", lambda *a: pytest.fail("timed while tracing"))
    x, w = torch.randn(2, 4, 8, 8), torch.randn(8, 4, 3, 3)
    f = torch.compile(lambda a, b: torchconv.conv2d(a, b, padding=1, algorithm="autotune"), fullgraph=True)
    torch.testing.assert_close(f(x, w), F.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-4)


def test_algorithm_list():
    """A comma-separated list runs each named kernel in its own pass and auto in the others; names are checked."""
    shape, wshape = (2, 8, 9, 9), (16, 8, 3, 3)
    plan = torchconv.explain(shape, wshape, padding=1, algorithm="im2col/cols_any_forward,auto")
    auto = torchconv.explain(shape, wshape, padding=1)
    assert plan["kernel"] == "im2col/cols_any_forward"
    assert plan["grad_input"]["kernel"] == auto["grad_input"]["kernel"]
    assert plan["grad_weight"]["kernel"] == auto["grad_weight"]["kernel"]
    with pytest.raises(RuntimeError, match="unknown kernel 'direct/none' in the algorithm list"):
        torchconv.explain(shape, wshape, padding=1, algorithm="direct/none,auto")
    with pytest.raises(RuntimeError, match="kernel direct/dw_nchw_forward does not apply"):
        torchconv.explain(shape, wshape, padding=1, algorithm="direct/dw_nchw_forward,auto")
    x, w = torch.randn(shape, dtype=torch.float64), torch.randn(wshape, dtype=torch.float64)
    algo = "direct/igemm_any_forward,im2col/cols_any_grad_input,direct/dense_nchw_grad_weight"
    torch.testing.assert_close(torchconv.conv2d(x, w, padding=1, algorithm=algo), F.conv2d(x, w, padding=1))


def test_algorithm_list_on_the_cuda_plan():
    """The CUDA backend's plan reads the same list (explain's CUDA plan needs no GPU)."""
    shape, wshape = (2, 8, 9, 9), (16, 8, 3, 3)
    auto = torchconv.explain(shape, wshape, padding=1, device="cuda")
    plan = torchconv.explain(shape, wshape, padding=1, device="cuda", algorithm="direct/direct_nchw_forward,auto")
    assert plan["kernel"] == "direct/direct_nchw_forward" != auto["kernel"]
    assert plan["grad_weight"]["kernel"] == auto["grad_weight"]["kernel"]
    with pytest.raises(RuntimeError, match="unknown kernel 'direct/igemm_any_forward' in the algorithm list"):
        torchconv.explain(shape, wshape, padding=1, device="cuda", algorithm="direct/igemm_any_forward,auto")
