"""The benchmark-and-verify run: `python bench/bench.py [options]` is `python -m torchconv.bench [options]`, which
works from an installed wheel too (python/torchconv/bench.py)."""

import sys

from torchconv.bench import main

if __name__ == "__main__":
    sys.exit(main())
