"""The Redis factor store lists its own users only, whatever characters its prefix holds.

``totp_users`` walks the keys with ``SCAN MATCH {prefix}*``; a prefix with a glob character in
it (``*``, ``?``, ``[``) would otherwise match other stores' keys, and a maintenance command
would then touch another application's users.
"""

from __future__ import annotations

from sessionauth.backends import open_backend


async def test_a_prefix_with_glob_characters_lists_only_its_own_users(
    redis_url: str, redis_prefix: str
) -> None:
    """``f*[x]?:`` read as a pattern would match ``fAxB:``; escaped, it matches itself only."""
    backend = open_backend(redis_url)
    try:
        odd = backend.factor_store(prefix=f"{redis_prefix}f*[x]?:")
        plain = backend.factor_store(prefix=f"{redis_prefix}fAxB:")
        await odd.begin_totp("1", b"mine")
        await plain.begin_totp("2", b"another application's")
        assert await odd.totp_users() == ["1"]
        assert await plain.totp_users() == ["2"]
    finally:
        await backend.aclose()
