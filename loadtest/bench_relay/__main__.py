"""``python -m loadtest.bench_relay``."""

import sys

from loadtest.bench_relay import main

sys.exit(main(sys.argv[1:]))
