"""The Redis store's Lua scripts: each a single atomic step on one key (one Cluster slot).

Records are msgpack arrays (see :mod:`sessionauth.backends.redis.codec`); the scripts read and
write them with Redis's built-in ``cmsgpack``, which round-trips the codec's integers and
strings exactly. Times are milliseconds on the application's clock, passed in ``ARGV``, so that
expiry is decided by the same clock as everywhere else. Every script that writes checks first
that the session is alive: a write racing a logout or a revocation never brings it back.
"""

from __future__ import annotations

__all__ = ["CREATE", "DELETE_USER", "UPDATE", "UPDATE_USER"]

# Reads a record (from the hash field ARGV[1], or the string key when ARGV[1] is empty) that is
# alive at ARGV[2]; shared by the scripts below.
_READ = """
local function read(key, field, now)
  local blob
  if field == '' then blob = redis.call('GET', key) else blob = redis.call('HGET', key, field) end
  if not blob then return nil end
  local ok, r = pcall(cmsgpack.unpack, blob)
  if not ok or type(r) ~= 'table' or type(r[1]) ~= 'number' or r[1] <= now then return nil end
  if type(r[7]) ~= 'table' then return nil end
  return r
end
local function write(key, field, r)
  local blob = cmsgpack.pack(r)
  if field == '' then
    redis.call('SET', key, blob, 'PXAT', r[1])
  else
    redis.call('HSET', key, field, blob)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIREAT', key, r[1])
    else redis.call('PEXPIREAT', key, r[1], 'GT') end
  end
end
"""
# KEYS[1]; ARGV: field ('' for an anonymous key), now ms, seen ms, expires ms ('' for both to
# leave them), number of pairs, key/JSON pairs, keys to delete. Returns 1, or 0 if gone.
UPDATE = (
    _READ
    + """
local key, field, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local r = read(key, field, now)
if not r then return 0 end
local n = tonumber(ARGV[5])
for i = 0, n - 1 do r[7][ARGV[6 + 2 * i]] = ARGV[7 + 2 * i] end
for i = 6 + 2 * n, #ARGV do r[7][ARGV[i]] = nil end
if ARGV[4] ~= '' then r[1] = tonumber(ARGV[4]); r[3] = tonumber(ARGV[3]) - r[2] end
write(key, field, r)
return 1
"""
)
# KEYS[1] user hash; ARGV: field, record, now ms. Drops the user's expired sessions meanwhile.
CREATE = (
    _READ
    + """
local key, now = KEYS[1], tonumber(ARGV[3])
local fields = redis.call('HKEYS', key)
for _, f in ipairs(fields) do
  if not read(key, f, now) then redis.call('HDEL', key, f) end
end
local r = cmsgpack.unpack(ARGV[2])
write(key, ARGV[1], r)
return 1
"""
)
# KEYS[1] user hash; ARGV: user id, now ms, field to keep ('' for none). Returns how many
# live sessions went.
DELETE_USER = (
    _READ
    + """
local key, now = KEYS[1], tonumber(ARGV[2])
local gone = 0
for _, f in ipairs(redis.call('HKEYS', key)) do
  local r = read(key, f, now)
  if not r then
    redis.call('HDEL', key, f)
  elseif r[5] == ARGV[1] and f ~= ARGV[3] then
    redis.call('HDEL', key, f)
    gone = gone + 1
  end
end
return gone
"""
)
# KEYS[1] user hash; ARGV: user id, now ms, then key/JSON pairs. Returns how many changed.
UPDATE_USER = (
    _READ
    + """
local key, now = KEYS[1], tonumber(ARGV[2])
local changed = 0
for _, f in ipairs(redis.call('HKEYS', key)) do
  local r = read(key, f, now)
  if r and r[5] == ARGV[1] then
    for i = 3, #ARGV, 2 do r[7][ARGV[i]] = ARGV[i + 1] end
    redis.call('HSET', key, f, cmsgpack.pack(r))
    changed = changed + 1
  end
end
return changed
"""
)
