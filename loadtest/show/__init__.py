"""``livesell-loadtest show``: a whole live show rehearsed against a server, then audited."""
