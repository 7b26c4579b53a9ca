"""``python -m loadtest.bench <what> ...``: flashsale, fanout, relay or pages benchmarks."""

from __future__ import annotations

import importlib
import sys

#: Benchmark name -> module with ``main(argv) -> int``; imported only when chosen.
BENCHES = {
    "flashsale": "loadtest.bench_flashsale",
    "fanout": "loadtest.bench_fanout",
    "relay": "loadtest.bench_relay",
    "pages": "loadtest.bench_pages",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to one benchmark module."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in BENCHES:
        print(f"usage: python -m loadtest.bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHES[args[0]]).main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
