"""RSS of a gateway fed 10,000 made-up model names from one key, per plan cache size.

    PYTHONPATH=$PWD/src python bench/plan_cache.py --sizes 100000 64

Each size runs in a fresh process (a gateway thread and a loopback OpenAI fake in it);
the growth is measured from the first 1,000 names to the last (the same helper as
tests/test_router_plan_cache.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(size: int, names: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["CROSSROADS_HOME"] = tempfile.mkdtemp(prefix="plan-cache-")
    from tests.fakes.openai_fake import OpenAIFake
    from tests.gateway_harness import MASTER
    from tests.test_router_plan_cache import wander

    os.environ["CROSSROADS_MASTER_KEY"] = MASTER  # the harness creates keys with it
    with OpenAIFake(require_key=False) as fake:
        os.environ["OPENAI_BASE_URL"] = f"{fake.url}/v1"  # type: ignore[attr-defined]
        os.environ["OPENAI_API_KEY"] = "sk-bench-0123456789"
        seen = wander(fake, size, names)  # type: ignore[arg-type]
    print(
        f"| {size} | {seen['cached']:,} | {seen['held']:,} | "
        f"{seen['grown'] / 2**20:+.1f} MiB |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 64])
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        one(args.one, args.names)
        return
    print("| plan_cache_size | plans kept | deployments held | RSS growth |")
    print("|---|---|---|---|")
    for size in args.sizes:
        subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--names", str(args.names)],
            check=True,
        )


if __name__ == "__main__":
    main()
