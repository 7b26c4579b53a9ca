"""Token verification with and without the revocation check, side by side (medians of 7 rounds).

Run: ``.venv/bin/python scripts/bench_verify.py``. Cold: every token seen for the first time
(HMAC and JSON); warm: the signer's cache hit. The revocation list holds 10,000 revoked jtis and
10,000 revoked users, none of them the tokens measured (so every check runs to the end).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from web.auth import Role, TokenSigner
from web.revocation import Revocation, RevocationList

SECRET = "bench-secret-0123456789-abcdefghijklmnop"
TOKENS = 20_000


def per_token_us(run: Callable[[], None]) -> float:
    """The median over 7 rounds of ``run``'s time per token, in microseconds."""
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        run()
        rounds.append((time.perf_counter() - start) / TOKENS * 1e6)
    return statistics.median(rounds)


def main() -> None:
    """Print the cold and warm verify cost without and with a revocation list."""
    revoked = RevocationList()
    for i in range(10_000):
        revoked.apply(Revocation(jti=f"j{i}", exp=2**40))
        revoked.apply(Revocation(user_id=f"u{i}", before=1))
    signers = {"without": TokenSigner(SECRET), "with": TokenSigner(SECRET, revoked=revoked)}
    tokens = [signers["without"].mint(f"user-{i}", Role.VIEWER) for i in range(TOKENS)]
    for kind in ("cold", "warm"):
        figures = {}
        for name, signer in signers.items():

            def run(signer: TokenSigner = signer, cold: bool = kind == "cold") -> None:
                if cold:
                    signer._cache.clear()
                for token in tokens:
                    signer.verify(token)

            run()
            figures[name] = per_token_us(run)
        ratio = figures["with"] / figures["without"]
        print(
            f"{kind}: {figures['without']:.2f} us without the revocation check, "
            f"{figures['with']:.2f} us with it (x{ratio:.2f})"
        )


if __name__ == "__main__":
    main()
