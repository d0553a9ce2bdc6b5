"""The SIMD kernels are built once per ISA; run every kernel's test (test_kernels.py) under each ISA this CPU
supports. The rest of the suite runs once, on the ISA the machine picks: only the direct kernels differ per ISA."""

import os
import subprocess
import sys

import pytest

import torchconv

HERE = os.path.dirname(os.path.abspath(__file__))


def supported_isas():
    info = torchconv.build_info()["cpu_supports"]
    return ["default"] + (["avx2"] if info["avx2"] else []) + (["avx512"] if info["avx512f"] else [])


def run_python(code, isa):
    env = dict(os.environ, TORCHCONV_CPU_CAPABILITY=isa)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("isa", supported_isas())
def test_kernel_suite_under_isa(isa):
    """Every kernel against torch, in a child process whose kernels are the `isa` copy."""
    code = (f"import sys, pytest, torchconv; assert torchconv.build_info()['cpu_isa'] == {isa!r}; "
            f"sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', {HERE!r} + '/test_kernels.py']))")
    r = run_python(code, isa)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


def test_unknown_isa_override_is_a_clear_error():
    r = run_python("import torchconv; torchconv.build_info()", "sse9")
    assert r.returncode != 0
    assert "TORCHCONV_CPU_CAPABILITY='sse9' is not one of default, avx2, avx512" in r.stderr
