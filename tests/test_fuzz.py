"""The differential fuzz of tests/fuzz.py against torch, on a bounded number of seeds.

TORCHCONV_FUZZ_SEEDS=N (and TORCHCONV_FUZZ_START=S) runs more, or others; `python tests/fuzz.py --seeds N` is the
same run by hand.
"""

import os
import time

import numpy as np

import fuzz

# Seeds of the CI run: about 2-3 minutes on the 2-core development machine, over every ISA the CPU has and the
# three algorithms (each seed runs ISAs x 3 times).
SEEDS = 300


def test_index_maps_are_numpy_pads():
    """The reference's closed-form index maps are numpy.pad's (which torchconv documents), so huge pads need no
    padded copy."""
    for mode, numpy_mode in (("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap"),
                             ("symmetric", "symmetric")):
        for size in range(1, 6):
            for before in range(13):
                for after in (0, 5, 12):
                    want = np.pad(np.arange(size), (before, after), mode=numpy_mode).tolist()
                    assert [fuzz._index_map(p - before, size, mode) for p in range(size + before + after)] == want


def test_fuzz_against_torch():
    seeds = int(os.environ.get("TORCHCONV_FUZZ_SEEDS", SEEDS))
    start = int(os.environ.get("TORCHCONV_FUZZ_START", 0))
    t0 = time.monotonic()
    results = fuzz.run(seeds, start)
    report = fuzz.summary(results, time.monotonic() - t0)
    print(report)
    assert not any(r["result"] == "defect" for r in results), report
