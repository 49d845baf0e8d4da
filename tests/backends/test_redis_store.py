"""RedisStore on real servers: size, one read per load, TTLs, grouping, failover, Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from sessionauth.backends.redis.sessions import PRINCIPAL_TTL, RedisStore
from sessionauth.errors import ConfigurationError, StoreUnavailable
from sessionauth.principal import Principal, PrincipalChange, new_epoch
from sessionauth.record import SessionRecord
from sessionauth.stores import open_store
from sessionauth.tokens import user_group
from tests.contract.backend_redis import delete_keys, encode_v1, until_replicas_acknowledge
from tests.support.clock import FakeClock
from tests.support.records import DAY, eventually, new_sid, record, sign_in
from tests.support.services import RedisCluster as ClusterSetup
from tests.support.services import RedisSentinelSetup, RedisServer
from tests.support.services.redis_tls import RedisTLSServer


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        yield opened
    finally:
        await delete_keys(opened._client, redis_prefix)
        await opened.aclose()


def client_of(store: RedisStore) -> Any:
    return store._client


def rotation(**fields: Any) -> PrincipalChange:
    return PrincipalChange(fallback_role="user", fallback_disabled=False, rotate=True, **fields)


@pytest.mark.redis
async def test_tutorial_session_takes_at_most_200_bytes(private_redis: RedisServer) -> None:
    """A tutorial login (user "1", role admin) adds one key of at most 200 bytes, all told.

    The key holds the session, the user's principal (the role lives there now) and the
    session's index entry, every value within Redis's default 64-byte listpack limit.
    """
    # A private server: on the shared one every key needs a longer, per-test prefix.
    store = RedisStore.from_url(private_redis.url)
    client = Redis.from_url(private_redis.url)
    try:
        await sign_in(store, new_sid("1"), record("1"), role="admin")
        keys = [key async for key in client.scan_iter(match="*")]
        used = sum([await client.memory_usage(key) for key in keys])
        encoding = await client.object("ENCODING", keys[0])
    finally:
        await client.aclose()
        await store.aclose()
    print(
        f"\nMEMORY USAGE of a tutorial session with its principal: {used} B in {len(keys)} key(s)"
    )
    assert keys == [f"sa:u:{user_group('1')}".encode()]
    assert encoding == b"listpack"
    assert used <= 200


@pytest.mark.redis
@pytest.mark.parametrize(("user", "command"), [("1", "cmdstat_hmget"), (None, "cmdstat_get")])
async def test_load_is_exactly_one_read(
    private_redis: RedisServer, user: str | None, command: str
) -> None:
    """load costs one command (HMGET of session and principal; GET if anonymous), nothing else."""
    store = RedisStore.from_url(private_redis.url)
    observer = Redis.from_url(private_redis.url)
    try:
        sid = new_sid(user)
        if user is None:
            await store.create(sid, record(None))
        else:
            await sign_in(store, sid, record(user), role="admin")
        await store.load(sid)  # the connection handshake is behind us

        async def stats() -> dict[str, int]:
            info = await observer.info("commandstats")
            return {name: value["calls"] for name, value in info.items() if name != "cmdstat_info"}

        before = await stats()
        loaded = await store.load(sid)
        after = await stats()
        assert loaded is not None
        assert (loaded.principal.role if loaded.principal else None) == (user and "admin")
    finally:
        await observer.aclose()
        await store.aclose()
    diff = {name: after[name] - before.get(name, 0) for name in after}
    assert {name: calls for name, calls in diff.items() if calls} == {command: 1}


@pytest.mark.redis
async def test_concurrent_loads_share_one_pipeline(private_redis: RedisServer) -> None:
    """32 concurrent loads reach Redis as 32 reads, sent together, all answered right."""
    store = RedisStore.from_url(private_redis.url)
    observer = Redis.from_url(private_redis.url)
    try:
        sids = [new_sid(str(n)) for n in range(32)]
        for n, sid in enumerate(sids):
            await sign_in(store, sid, record(str(n), n=n), role=f"role-{n}")
        await observer.config_resetstat()
        loaded = await asyncio.gather(*(store.load(sid) for sid in sids))
        info = await observer.info("commandstats")
    finally:
        await observer.aclose()
        await store.aclose()
    assert [rec.data["n"] if rec else None for rec in loaded] == list(range(32))
    assert [rec.principal.role if rec and rec.principal else None for rec in loaded] == [
        f"role-{n}" for n in range(32)
    ]
    assert info["cmdstat_hmget"]["calls"] == 32


@pytest.mark.redis
async def test_user_hash_lives_until_the_last_session_and_touches_extend_it(
    store: RedisStore, redis_prefix: str
) -> None:
    """The user's hash expires with its latest session; a touch moves that forward.

    Sessions shorter than a day leave the hash living a day after the principal's install.
    """
    client = client_of(store)
    ukey = f"{redis_prefix}u:{user_group('u1')}"
    short, long = new_sid("u1"), new_sid("u1")
    rec_short, rec_long = record("u1", ttl=2 * DAY), record("u1", ttl=3 * DAY)
    await sign_in(store, short, rec_short)
    await sign_in(store, long, rec_long)
    assert await client.pexpiretime(ukey) == round(rec_long.expires * 1000)
    seen = rec_short.created + 50
    assert await store.touch(short, seen=seen, expires=seen + 4 * DAY)
    assert await client.pexpiretime(ukey) == round((seen + 4 * DAY) * 1000)


@pytest.mark.redis
async def test_a_principal_without_sessions_lives_a_day(
    store: RedisStore, redis_prefix: str
) -> None:
    """A hash holding only a principal expires a day after the last principal write."""
    client = client_of(store)
    ukey = f"{redis_prefix}u:{user_group('lonely')}"
    before = time.time()
    await store.install_principal("lonely", Principal(epoch=new_epoch(), role="user"))
    after = time.time()
    expiry = await client.pexpiretime(ukey) / 1000
    assert before + PRINCIPAL_TTL - 1 <= expiry <= after + PRINCIPAL_TTL + 1
    assert await client.hkeys(ukey) == [b"p"]


@pytest.mark.redis
async def test_expired_sessions_leave_the_users_hash_at_the_next_login(
    redis_url: str, redis_prefix: str
) -> None:
    """A dead session inside a user's hash is dropped when that user logs in again."""
    clock = FakeClock()
    store = RedisStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    client = client_of(store)
    ukey = f"{redis_prefix}u:{user_group('u2')}"
    try:
        now = clock()
        dead = SessionRecord(
            data={}, created=now, seen=now, issued=now, expires=now + 10, user_id="u2"
        )
        gone = new_sid("u2")
        await sign_in(store, gone, dead)
        clock.advance(20)  # dead by the store's clock, while Redis still keeps the hash
        field = gone.split(".")[1][:11].encode()
        assert await client.hexists(ukey, field)
        assert (await store.list_user("u2")).sessions == []
        now = clock()
        alive = SessionRecord(
            data={}, created=now, seen=now, issued=now, expires=now + 60, user_id="u2"
        )
        await sign_in(store, new_sid("u2"), alive)
        assert not await client.hexists(ukey, field)
        assert await client.hlen(ukey) == 4  # the live session, its index entry, p and q
        assert (await store.change_principal("u2", rotation()))[1] == 1
        assert sorted(await client.hkeys(ukey)) == [b"p", b"q"]
    finally:
        await delete_keys(client, redis_prefix)
        await store.aclose()


@pytest.mark.redis
async def test_listing_a_users_sessions_costs_the_same_after_any_number_of_rotations(
    private_redis: RedisServer,
) -> None:
    """Rotations behind a live older session leave no work for each later listing.

    Each rotation (a login over a session, a regeneration, a renewal) indexes its new record
    and unindexes the old one, leaving a gap in the sequence numbers while an older session
    stays alive ahead of them. Listing used to walk every number down to that session: a user
    who rotated 20,000 times made each listing of their sessions (the account page, a logout
    racing a rotation) block Redis for ~30 ms, for every client of it.
    """
    store = RedisStore.from_url(private_redis.url)
    observer = Redis.from_url(private_redis.url)

    async def listing_commands() -> tuple[int, int]:
        # Commands run inside the script count too: Redis reports each in commandstats.
        await observer.config_resetstat()
        page = await store.list_user("u1")
        info = await observer.info("commandstats")
        calls = sum(value["calls"] for name, value in info.items() if name != "cmdstat_info")
        return len(page.sessions), calls

    async def rotate(times: int, sid: str) -> str:
        for _ in range(times):
            successor = new_sid("u1")
            await sign_in(store, successor, record("u1"))
            await store.delete(sid)
            sid = successor
        return sid

    try:
        await sign_in(store, new_sid("u1"), record("u1"))  # the old session, still alive
        current = new_sid("u1")
        await sign_in(store, current, record("u1"))
        current = await rotate(3, current)
        await store.list_user("u1")  # the script is loaded before anything is counted
        few = await listing_commands()
        await rotate(400, current)
        many = await listing_commands()
    finally:
        await observer.aclose()
        await store.aclose()
    assert few[0] == many[0] == 2
    assert many[1] == few[1]


@pytest.mark.redis
async def test_a_login_after_many_rotations_costs_what_it_costs_after_few(
    private_redis: RedisServer,
) -> None:
    """The login that passes the gaps rotations left behind an ended session jumps over them.

    The creation index's head stays at the oldest live session while later ones rotate; once
    that session ends, the next login moves the head past every number the rotations used. It
    used to look at each in turn: 20,000 rotations made that login run 20,000 commands inside
    Redis (~30 ms during which Redis served no one), a cycle a user could repeat.
    """
    store = RedisStore.from_url(private_redis.url)
    observer = Redis.from_url(private_redis.url)

    async def login_after(user: str, rotations: int) -> int:
        old = new_sid(user)
        await sign_in(store, old, record(user))
        current = new_sid(user)
        await sign_in(store, current, record(user))
        for _ in range(rotations):
            successor = new_sid(user)
            await sign_in(store, successor, record(user))
            await store.delete(current)
            current = successor
        await store.delete(old)
        await observer.config_resetstat()
        await sign_in(store, new_sid(user), record(user))
        info = await observer.info("commandstats")
        assert len((await store.list_user(user)).sessions) == 2
        return sum(value["calls"] for name, value in info.items() if name != "cmdstat_info")

    try:
        await login_after("warm-up", 1)  # the scripts are loaded before anything is counted
        few = await login_after("few", 3)
        many = await login_after("many", 403)
    finally:
        await observer.aclose()
        await store.aclose()
    assert many == few


@pytest.mark.redis
async def test_index_entries_under_a_number_written_another_way_are_not_listed_twice(
    store: RedisStore, redis_prefix: str
) -> None:
    """A field "02" beside "2" (not the store's writing) names no second listing of a session."""
    client = client_of(store)
    sids = [new_sid("u7") for _ in range(2)]
    for sid in sids:
        await sign_in(store, sid, record("u7"))
    key = f"{redis_prefix}u:{user_group('u7')}"
    field = await client.hget(key, "2")
    assert field is not None
    await client.hset(key, mapping={"02": field, "002": field})
    listed = [handle for handle, _ in (await store.list_user("u7")).sessions]
    assert sorted(listed) == sorted(sids)


async def _rewrite_record(store: RedisStore, prefix: str, sid: str, **changes: Any) -> None:
    """Rewrite fields of the stored record of ``sid`` (as a hand with write access to Redis)."""
    client = client_of(store)
    group, field = sid.split(".")[0], sid.split(".")[1][:11]
    key = f"{prefix}u:{group}"
    fields = list(msgspec.msgpack.decode(await client.hget(key, field)))
    raw: dict[str, bytes] = {}
    for at, value in changes.items():
        if isinstance(value, bytes):  # a msgpack string of these bytes, valid UTF-8 or not
            raw[at] = value
            value = "\x01" * len(value)
        fields[int(at.removeprefix("at"))] = value
    blob = msgspec.msgpack.encode(fields)
    for value in raw.values():
        blob = blob.replace(b"\x01" * len(value), value, 1)
    await client.hset(key, field, blob)


@pytest.mark.redis
async def test_a_corrupt_record_does_not_end_the_listing_before_the_sessions_after_it(
    store: RedisStore, redis_prefix: str
) -> None:
    """Page by page, a record that fails to decode is skipped and the older sessions follow."""
    oldest, middle, newest = (new_sid("u8") for _ in range(3))
    for sid in (oldest, middle, newest):
        await sign_in(store, sid, record("u8"))
    await _rewrite_record(store, redis_prefix, middle, at7={"k": "{not json"})
    listed, cursor = [], None
    for _ in range(4):
        page = await store.list_user("u8", limit=1, cursor=cursor)
        listed += [handle for handle, _ in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert listed == [newest, oldest]
    assert await store.load(middle) is None


@pytest.mark.redis
@pytest.mark.parametrize(
    "changes",
    [{"at8": b"\xff" * 11}, {"at7": {"k": "[" * 5000 + "]" * 5000}}],
    ids=["binding-not-text", "value-nested-5000-deep"],
)
async def test_records_no_store_wrote_are_no_session_in_listings_and_loads(
    store: RedisStore, redis_prefix: str, changes: dict[str, Any]
) -> None:
    """A binding that is not text, a value nested deeper than any written: no session, no 500."""
    planted, kept = new_sid("u9"), new_sid("u9")
    await sign_in(store, planted, record("u9"))
    await sign_in(store, kept, record("u9"))
    await _rewrite_record(store, redis_prefix, planted, **changes)
    assert [handle for handle, _ in (await store.list_user("u9")).sessions] == [kept]
    assert await store.load(planted) is None


@pytest.mark.redis
async def test_anonymous_sessions_are_one_string_key(store: RedisStore, redis_prefix: str) -> None:
    """A session without a user is a single string key with its own TTL."""
    sid = new_sid(None)
    rec = record(None, theme="dark")
    await store.create(sid, rec)
    client = client_of(store)
    keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
    assert keys == [f"{redis_prefix}a:{sid}".encode()]
    assert await client.pexpiretime(keys[0]) == round(rec.expires * 1000)


@pytest.mark.redis
async def test_users_sharing_a_group_stay_apart(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two users whose sessions land in one hash never see or revoke each other's sessions."""
    mine, theirs = new_sid("a"), new_sid("a")
    await sign_in(store, mine, record("a"), role="admin")
    # Another user's principal and session in a's hash, as a 64-bit group collision would put
    # them: the store finds b's hash where it finds a's.
    a_key = store._principals.key_of("a")
    with monkeypatch.context() as patched:
        patched.setattr(store._principals, "key_of", lambda user_id: a_key)
        await sign_in(store, theirs, record("b-collides"), role="user")
        b_before = await store.principal("b-collides")
        assert [sid for sid, _ in (await store.list_user("a")).sessions] == [mine]
        assert (await store.change_principal("a", rotation()))[1] == 1
        assert await store.principal("b-collides") == b_before
        assert [sid for sid, _ in (await store.list_user("b-collides")).sessions] == [theirs]
    loaded = await store.load(theirs)
    assert loaded is not None
    assert loaded.principal == b_before
    assert await store.load(mine) is None


@pytest.mark.redis
async def test_a_users_session_needs_a_token_made_for_that_user(store: RedisStore) -> None:
    """Storing a user's record under an anonymous id (or the reverse) is a programming error."""
    with pytest.raises(ValueError, match="token made for that user"):
        await store.create(new_sid(None), record("1"))
    with pytest.raises(ValueError, match="token made for that user"):
        await store.create(new_sid("1"), record(None))


@pytest.mark.redis
async def test_an_injected_client_stays_open(redis_url: str, redis_prefix: str) -> None:
    """aclose leaves a client the caller handed in (and owns) open."""
    client = Redis.from_url(redis_url)
    try:
        store = RedisStore(client, prefix=redis_prefix)
        sid = new_sid(None)
        await store.create(sid, record(None))
        assert await store.load(sid) is not None
        await store.aclose()
        assert await client.ping()
        async with RedisStore(client, prefix=redis_prefix) as again:
            assert await again.load(sid) is not None
    finally:
        await delete_keys(client, redis_prefix)
        await client.aclose()


@pytest.mark.redis
async def test_create_fails_when_no_replica_acknowledges(private_redis: RedisServer) -> None:
    """With wait_replicas and no replica, create raises StoreUnavailable instead of lying."""
    store = RedisStore.from_url(private_redis.url, timeout=1.0, wait_replicas=1)
    try:
        with pytest.raises(StoreUnavailable, match="replicas"):
            await asyncio.wait_for(store.create(new_sid(), record()), 5)
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_an_unacknowledged_session_is_deleted_and_reported(
    private_redis: RedisServer,
) -> None:
    """A session no replica acknowledged is gone again, and the store says logins are degraded."""
    store = RedisStore.from_url(private_redis.url, timeout=1.0, wait_replicas=1)
    plain = RedisStore.from_url(private_redis.url)
    try:
        sids = [new_sid("refused") for _ in range(3)]
        for sid in sids:
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.create(sid, record("refused")), 5)
        assert [await plain.load(sid) for sid in sids] == [None] * 3
        assert (await plain.list_user("refused")).sessions == []
        assert store.acknowledgement_failure == (
            "logins cannot be acknowledged: 0 of 1 replicas answered within 0.5 s"
        )
        await asyncio.wait_for(store.ping(), 5)  # Redis answers: ready, but still degraded
        assert store.acknowledgement_failure is not None
    finally:
        await store.aclose()
        await plain.aclose()


@pytest.mark.redis
async def test_unacknowledged_principal_writes_are_unavailable(private_redis: RedisServer) -> None:
    """With wait_replicas and no replica, install and change raise StoreUnavailable."""
    store = RedisStore.from_url(private_redis.url, timeout=1.0, wait_replicas=1)
    plain = RedisStore.from_url(private_redis.url)
    try:
        principal = Principal(epoch=new_epoch(), role="admin")
        with pytest.raises(StoreUnavailable, match="replicas"):
            await asyncio.wait_for(store.install_principal("acked", principal), 5)
        assert store.acknowledgement_failure is not None
        change = PrincipalChange(fallback_role="user", fallback_disabled=False, disabled=True)
        with pytest.raises(StoreUnavailable, match="replicas"):
            await asyncio.wait_for(store.change_principal("acked", change), 5)
        # The restriction stands on the master all the same: safer applied than not.
        stands = await plain.principal("acked")
        assert stands is not None
        assert (stands.epoch, stands.role, stands.disabled) == (principal.epoch, "admin", True)
    finally:
        await store.aclose()
        await plain.aclose()


@pytest.mark.redis
@pytest.mark.slow
async def test_sessions_survive_a_sentinel_failover(
    redis_sentinel: RedisSentinelSetup, redis_prefix: str
) -> None:
    """20 acknowledged sessions load after a failover; the same store serves, never hangs."""
    timeout = 1.0
    store = open_store(redis_sentinel.url, timeout=timeout, prefix=redis_prefix)
    assert isinstance(store, RedisStore)
    sids = [new_sid("survivor") for _ in range(20)]
    latencies: list[float] = []
    switching = True

    async def probe() -> None:
        # Requests during the switch: each answers or fails within the timeout.
        while switching:
            started = time.monotonic()
            with contextlib.suppress(StoreUnavailable):
                await asyncio.wait_for(store.load(sids[0]), 5)
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    try:
        await until_replicas_acknowledge(store)
        for sid in sids:
            await sign_in(store, sid, record("survivor"))
        prober = asyncio.create_task(probe())
        try:
            # The crashed master comes back only afterwards: it restarts empty (no persistence),
            # and Sentinels still settling could otherwise promote it, which loses data
            # whatever the client does.
            await asyncio.to_thread(redis_sentinel.failover, rejoin=False)
        finally:
            switching = False
            await prober
        loaded = await eventually(lambda: asyncio.gather(*(store.load(sid) for sid in sids)))
        assert all(rec is not None for rec in loaded)
        await asyncio.to_thread(redis_sentinel.start)  # rejoin, and settle
        fresh = new_sid("survivor")
        await eventually(lambda: sign_in(store, fresh, record("survivor")))
        assert await store.load(fresh) is not None
    finally:
        await delete_keys(client_of(store), redis_prefix)
        await store.aclose()
    assert latencies
    assert max(latencies) < timeout + 0.5


@pytest.mark.redis
async def test_cluster_serves_users_and_anonymous_sessions_across_slots(
    redis_cluster: ClusterSetup, redis_prefix: str
) -> None:
    """On Cluster a user's sessions (one key) and anonymous ones (spread) all work atomically."""
    store = RedisStore.from_url(redis_cluster.url, prefix=redis_prefix)
    try:
        sids = [new_sid("clustered") for _ in range(8)]
        for sid in sids:
            await sign_in(store, sid, record("clustered"), role="admin")
        anonymous = [new_sid(None) for _ in range(8)]
        for sid in anonymous:
            await store.create(sid, record(None))
        # Anonymous sessions spread over slots; a user's sessions share one key, one slot.
        assert len({key_slot(f"{redis_prefix}a:{sid}".encode()) for sid in anonymous}) > 1
        assert all([await store.load(sid) is not None for sid in anonymous])
        assert [sid for sid, _ in (await store.list_user("clustered")).sessions] == sids[::-1]
        demotion = PrincipalChange(fallback_role="user", fallback_disabled=False, role="user")
        assert (await store.change_principal("clustered", demotion))[1] == 0
        loaded = await store.load(sids[1])
        assert loaded is not None
        assert loaded.principal is not None
        assert loaded.principal.role == "user"
        assert (await store.change_principal("clustered", rotation(keep=sids[0])))[1] == 7
        assert [await store.load(sid) is None for sid in sids] == [False] + [True] * 7
        assert [sid for sid, _ in (await store.list_user("clustered")).sessions] == [sids[0]]
    finally:
        await delete_keys(client_of(store), redis_prefix)
        await store.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis://",
        "redis:///0",
        "redis://host:notaport/0",
        "redis://host/notadb",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel:///mymaster",
        "redis+sentinel://127.0.0.1:x/mymaster",
        "redis+sentinel://127.0.0.1:26379/mymaster?db=x",
        "redis+sentinel://127.0.0.1:26379/mymaster?ssl=1",
        "redis+sentinel://127.0.0.1:26379/mymaster?wait_replicas=-1",
        "redis+sentinel://127.0.0.1:26379/mymaster?wait_replicas=one",
        "redis+sentinel://127.0.0.1:26379/mymaster?ack_timeout=0",
        "redis+sentinel://127.0.0.1:26379/mymaster?ack_timeout=nan",
        "redis+sentinel://127.0.0.1:26379/mymaster?ack_timeout=2",
        "redis+sentinel://127.0.0.1:26379/mymaster?ack_timeout=",
        "redis+cluster://",
        "redis+cluster://127.0.0.1:7000/0",
        "redis+cluster://127.0.0.1:99999",
        "rediss+cluster://127.0.0.1:7000",
        "mongodb://127.0.0.1",
    ],
)
async def test_bad_urls_are_configuration_errors(url: str) -> None:
    """A URL without a host, with a bad port, db or option, or another scheme is refused."""
    with pytest.raises(ConfigurationError):
        RedisStore.from_url(url)


async def test_client_settings_are_checked() -> None:
    """A decoding client, a bad timeout and WAIT on Cluster are refused at construction."""
    decoding = Redis(host="127.0.0.1", port=1, decode_responses=True)
    plain = Redis(host="127.0.0.1", port=1)
    cluster = RedisCluster(host="127.0.0.1", port=1)
    try:
        with pytest.raises(ConfigurationError):
            RedisStore(decoding)
        with pytest.raises(ConfigurationError):
            RedisStore(plain, timeout=0)
        with pytest.raises(ConfigurationError):
            RedisStore(plain, wait_replicas=-1)
        with pytest.raises(ConfigurationError):
            RedisStore(cluster, wait_replicas=1)
        assert await RedisStore(cluster).purge_expired() == 0
    finally:
        await decoding.aclose()
        await plain.aclose()
        await cluster.aclose()


async def test_sentinel_urls_wait_for_one_replica_by_default() -> None:
    """redis+sentinel:// waits for one replica unless told otherwise; redis:// does not."""
    sentinel = RedisStore.from_url("redis+sentinel://127.0.0.1:1,[::1]:2/svc?db=3")
    plain = RedisStore.from_url("redis://127.0.0.1:1/0")
    explicit = RedisStore.from_url("redis+sentinel://u:p@127.0.0.1:1/svc", wait_replicas=0)
    try:
        assert sentinel._wait_replicas == 1
        assert plain._wait_replicas == 0
        assert explicit._wait_replicas == 0
    finally:
        for opened in (sentinel, plain, explicit):
            await opened.aclose()


async def test_sentinel_urls_carry_the_acknowledgement_policy() -> None:
    """?wait_replicas=N&ack_timeout=S set how many replicas a login waits for, and how long."""
    url = "redis+sentinel://127.0.0.1:1/svc?db=2&wait_replicas=2&ack_timeout=0.25"
    configured = RedisStore.from_url(url)
    none = RedisStore.from_url("redis+sentinel://127.0.0.1:1/svc?wait_replicas=0")
    try:
        assert (configured._wait_replicas, configured._ack_timeout) == (2, 0.25)
        assert none._wait_replicas == 0
    finally:
        await configured.aclose()
        await none.aclose()


@pytest.mark.redis
async def test_tls_with_an_acl_user_carries_the_pipelined_reads(
    redis_tls: RedisTLSServer, redis_prefix: str
) -> None:
    """rediss:// as an ACL user: the read pipeline's connection is TLS; one context is shared."""
    store = RedisStore.from_url(redis_tls.url, prefix=redis_prefix)
    try:
        sid = new_sid("tls")
        await sign_in(store, sid, record("tls"))
        loaded = await asyncio.gather(*(store.load(sid) for _ in range(20)))
        assert all(found is not None for found in loaded)
        reads = store._reads
        assert reads is not None
        assert reads._protocol is not None
        assert reads._protocol.transport.get_extra_info("ssl_object") is not None
        pool = client_of(store).connection_pool
        # redis-py builds a context (loading the system CA store) per connection otherwise.
        assert pool.make_connection().ssl_context is pool.make_connection().ssl_context
    finally:
        await delete_keys(client_of(store), redis_prefix)
        await store.aclose()


async def test_a_deployment_redis_cannot_serve_is_unavailable_never_a_bug(
    private_redis: RedisServer,
) -> None:
    """A key of another type under the prefix, or an ACL forbidding the keys: StoreUnavailable.

    Both are the deployment's to fix; raised as anything else they would reach the client as a
    500 instead of a 503 with Retry-After.
    """
    admin = Redis.from_url(private_redis.url)
    sid = new_sid("1")
    clashing = RedisStore.from_url(private_redis.url, prefix="clash:")
    await clashing.create(sid, record("1"))
    group_key = f"clash:u:{user_group('1')}"
    await admin.delete(group_key)
    await admin.set(group_key, b"a string where the store keeps a hash")
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">app-password", "~other:*", "+@all")
    forbidden = RedisStore.from_url(
        f"redis://app:app-password@{private_redis.host}:{private_redis.port}/0", prefix="sa:"
    )
    try:
        with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
            await clashing.load(sid)
        with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
            await clashing.touch(sid, seen=time.time(), expires=time.time() + 60)
        with pytest.raises(StoreUnavailable, match=r"NOPERM|permission"):
            await forbidden.load(new_sid("2"))
        with pytest.raises(StoreUnavailable, match=r"NOPERM|permission"):
            await forbidden.create(new_sid("2"), record("2"))
    finally:
        await clashing.aclose()
        await forbidden.aclose()
        await admin.aclose()


@pytest.mark.redis
async def test_a_hash_left_by_version_1_serves_nothing_and_a_rotation_clears_it(
    store: RedisStore, redis_prefix: str
) -> None:
    """0.1's sessions (full-digest fields, no version) load as None; logins and rotations work.

    An upgrade finds the user's hash as 0.1 left it: the session is no session, a new login
    lands beside it, and the user's next rotation deletes the leftover field.
    """
    client = client_of(store)
    old = new_sid("upgraded")
    group, digest = old.split(".")
    ukey = f"{redis_prefix}u:{group}".encode()
    await client.hset(ukey, digest.encode(), encode_v1(record("upgraded", role="admin"), old))
    assert await store.load(old) is None
    fresh = new_sid("upgraded")
    await sign_in(store, fresh, record("upgraded"))
    assert await store.load(fresh) is not None
    assert [sid for sid, _ in (await store.list_user("upgraded")).sessions] == [fresh]
    assert (await store.change_principal("upgraded", rotation(keep=fresh)))[1] == 0
    assert not await client.hexists(ukey, digest.encode())
    assert await store.load(fresh) is not None
