"""``python -m sessionauth``: the ``sessionauth`` console script, where it is not on ``PATH``."""

from __future__ import annotations

from sessionauth.console import main

if __name__ == "__main__":
    main()
