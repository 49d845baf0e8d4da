"""The Redis store's Lua scripts: each a single atomic step on one key (one Cluster slot).

Records and principals are msgpack (see :mod:`sessionauth.backends.redis.codec`); the scripts
read and write them with Redis's built-in ``cmsgpack``, which round-trips the codec's integers
and strings exactly. Times are milliseconds on the application's clock, passed in ``ARGV``, so
that expiry is decided by the same clock as everywhere else. Every script that writes a session
checks first that it is alive: a write racing a logout or a revocation never brings it back.

A user hash (see :mod:`sessionauth.backends.redis.keys` for the layout) keeps its sessions
in creation order with an index: field ``<n>`` (a decimal sequence number) names the session
field created n-th, the record carries ``n`` too, and field ``q`` holds ``[next, head, count]``:
the next number to give, the oldest entry that may still be in the index, and how many entries
are. A login appends one entry and then moves the head past deleted entries, past sessions that
died meanwhile and, while there are more than ``max_sessions`` entries, past the oldest live
ones, which it ends. Each entry is passed once, so a login costs O(1) amortised, whatever the
number of sessions (sessionauth 0.1 read every field of the hash on every login).

Epochs are strings, compared as strings: never a Lua number (a double) that could round.
Disabled flags travel as ``"1"``/``"0"`` and come back as 1/0 (a Lua ``false`` in a reply
array would end the array).
"""

from __future__ import annotations

from sessionauth.record import FORMAT_VERSION

__all__ = ["CHANGE", "CREATE", "DELETE", "INSTALL", "LIST", "UPDATE"]

_HELPERS = f"""
local VERSION = {FORMAT_VERSION}
-- The record in blob if it is one of this format alive at now (and, given one, bound to
-- binding), else nil.
local function live(blob, now, binding)
  if not blob then return nil end
  local ok, r = pcall(cmsgpack.unpack, blob)
  if not ok or type(r) ~= 'table' or r[1] ~= VERSION then return nil end
  if type(r[2]) ~= 'number' or type(r[3]) ~= 'number' or r[2] + r[3] <= now then return nil end
  if type(r[8]) ~= 'table' or (binding and binding ~= '' and r[9] ~= binding) then return nil end
  return r
end
local function read(key, field, now, binding)
  if field == '' then return live(redis.call('GET', key), now, binding) end
  return live(redis.call('HGET', key, field), now, binding)
end
-- PEXPIREAT, but never earlier than the key's current expiry.
local function extend(key, at)
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIREAT', key, at)
  else redis.call('PEXPIREAT', key, at, 'GT') end
end
local function write(key, field, r)
  local blob = cmsgpack.pack(r)
  if field == '' then
    redis.call('SET', key, blob, 'PXAT', r[2] + r[3])
  else
    redis.call('HSET', key, field, blob)
    extend(key, r[2] + r[3])
  end
end
local function unpacked(blob)
  if not blob then return nil end
  local ok, value = pcall(cmsgpack.unpack, blob)
  if ok and type(value) == 'table' then return value end
  return nil
end
local function principals(key)
  return unpacked(redis.call('HGET', key, 'p')) or {{}}
end
local function queue(key)
  local q = unpacked(redis.call('HGET', key, 'q'))
  if q and type(q[1]) == 'number' and type(q[2]) == 'number' and type(q[3]) == 'number' then
    return q
  end
  return {{1, 1, 0}}
end
-- Remove the index entry of the session in field f with sequence seq, if it has one.
local function unindex(key, q, seq, f)
  if type(seq) ~= 'number' or seq < 1 then return end
  local at = tostring(seq)
  if redis.call('HGET', key, at) == f then
    redis.call('HDEL', key, at)
    q[3] = q[3] - 1
  end
end
local function flag(value) if value then return 1 end return 0 end
-- The number an index entry's field names, if the field is one: decimal as this store writes
-- it ("7", never "07"), so one number is never two entries.
local function entry_number(f)
  if #f == 11 or not string.find(f, '^[1-9]%d*$') then return nil end
  return tonumber(f)
end
-- The numbers of the index entries in the hash, from `from` on, ascending.
local function entries_from(key, from)
  local found = {{}}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local n = entry_number(f)
    if n and n >= from then table.insert(found, n) end
  end
  table.sort(found)
  return found
end
"""

# KEYS[1]; ARGV: field ('' for an anonymous key), binding, now ms, seen ms, expires ms, number
# of pairs, key/JSON pairs, keys to delete. Returns 1, or 0 if the session is gone.
UPDATE = (
    _HELPERS
    + """
local key, field, now = KEYS[1], ARGV[1], tonumber(ARGV[3])
local r = read(key, field, now, ARGV[2])
if not r then return 0 end
local n = tonumber(ARGV[6])
for i = 0, n - 1 do r[8][ARGV[7 + 2 * i]] = ARGV[8 + 2 * i] end
for i = 7 + 2 * n, #ARGV do r[8][ARGV[i]] = nil end
r[3] = tonumber(ARGV[5]) - r[2]
r[4] = tonumber(ARGV[4]) - r[2]
write(key, field, r)
return 1
"""
)

# KEYS[1] the user hash or the anonymous key; ARGV: field ('' for an anonymous key), record,
# now ms, max sessions. Returns {1} if a live session has the id, {2} if the record's epoch is
# not its user's enabled principal's, else {0} or {0, epoch, role, disabled}.
CREATE = (
    _HELPERS
    + """
local key, field, now = KEYS[1], ARGV[1], tonumber(ARGV[3])
local r = cmsgpack.unpack(ARGV[2])
if field == '' then
  if read(key, '', now) then return {1} end
  write(key, '', r)
  return {0}
end
local old = redis.call('HGET', key, field)
if live(old, now) then return {1} end
local principal = nil
if r[10] ~= '' then
  principal = principals(key)[r[6]]
  if type(principal) ~= 'table' or principal[3] or principal[1] ~= r[10] then return {2} end
end
local q = queue(key)
local dead = unpacked(old)
if dead then unindex(key, q, dead[11], field) end
r[11] = q[1]
redis.call('HSET', key, tostring(q[1]), field)
q[1] = q[1] + 1
q[3] = q[3] + 1
write(key, field, r)
local max = tonumber(ARGV[4])
-- At the first gap (numbers whose sessions were deleted or rotated away) the walk reads the
-- index's numbers once and jumps from entry to entry: a gap costs nothing, however long.
local ahead, next_at = nil, 1
while q[2] < q[1] do
  local at = tostring(q[2])
  local f = redis.call('HGET', key, at)
  if f then
    local blob = redis.call('HGET', key, f)
    local s = unpacked(blob)
    local mine = s ~= nil and s[11] == q[2]
    if mine and q[3] <= max and live(blob, now) then break end
    redis.call('HDEL', key, at)
    q[3] = q[3] - 1
    if mine or (blob and not s) then redis.call('HDEL', key, f) end
    q[2] = q[2] + 1
  else
    if not ahead then ahead = entries_from(key, q[2]) end
    while ahead[next_at] and ahead[next_at] <= q[2] do next_at = next_at + 1 end
    q[2] = math.min(ahead[next_at] or q[1], q[1])
  end
end
redis.call('HSET', key, 'q', cmsgpack.pack(q))
if not principal then return {0} end
return {0, principal[1], principal[2], flag(principal[3])}
"""
)

# KEYS[1] the user hash; ARGV: field, binding. Deletes the session and its index entry.
DELETE = (
    _HELPERS
    + """
local key, field = KEYS[1], ARGV[1]
local blob = redis.call('HGET', key, field)
if not blob then return 0 end
local r = unpacked(blob)
if r and r[9] ~= ARGV[2] then return 0 end
redis.call('HDEL', key, field)
if r and type(r[11]) == 'number' and r[11] > 0 then
  local q = queue(key)
  unindex(key, q, r[11], field)
  redis.call('HSET', key, 'q', cmsgpack.pack(q))
end
return 1
"""
)

# KEYS[1] the user hash; ARGV: user id, epoch, role, disabled ('1'/'0'), now ms, the TTL of a
# principal without sessions (ms). Stores the principal unless the user has one; returns
# {epoch, role, disabled} in force.
INSTALL = (
    _HELPERS
    + """
local key, user = KEYS[1], ARGV[1]
local p = principals(key)
local current = p[user]
if type(current) ~= 'table' then
  current = {ARGV[2], ARGV[3], ARGV[4] == '1'}
  p[user] = current
  redis.call('HSET', key, 'p', cmsgpack.pack(p))
end
extend(key, tonumber(ARGV[5]) + tonumber(ARGV[6]))
return {current[1], current[2], flag(current[3])}
"""
)

# KEYS[1] the user hash; ARGV: user id, now ms, field to keep ('' for none), its binding, a new
# epoch, fallback role, fallback disabled, role ('' unchanged), disabled ('', '1', '0'), rotate
# ('1'/'0'), the TTL of a principal without sessions (ms). Applies the change like
# PrincipalChange.apply; a rotation deletes every session of the user but the one kept, which
# takes the new epoch (a first principal installed without one keeps set_user() sessions).
# Returns {epoch, role, disabled, sessions that were being served}.
CHANGE = (
    _HELPERS
    + """
local key, user, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local p = principals(key)
local current = p[user]
if type(current) ~= 'table' then current = nil end
local epoch, role, disabled = ARGV[5], ARGV[6], ARGV[7] == '1'
if current then
  role, disabled = current[2], current[3]
  if ARGV[10] ~= '1' then epoch = current[1] end
end
if ARGV[8] ~= '' then role = ARGV[8] end
if ARGV[9] ~= '' then disabled = ARGV[9] == '1' end
p[user] = {epoch, role, disabled}
redis.call('HSET', key, 'p', cmsgpack.pack(p))
local deleted = 0
if ARGV[10] == '1' then
  local q = queue(key)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local f, blob = all[i], all[i + 1]
    if #f == 11 then
      local r = unpacked(blob)
      if not r or r[1] ~= VERSION then
        redis.call('HDEL', key, f)
      elseif r[6] == user then
        local alive = live(blob, now)
        if alive and f == ARGV[3] and r[9] == ARGV[4] then
          r[10] = epoch
          redis.call('HSET', key, f, cmsgpack.pack(r))
        else
          if alive and (r[10] == '' or (current and r[10] == current[1])) then
            deleted = deleted + 1  -- a session that was being served until now
          end
          redis.call('HDEL', key, f)
          unindex(key, q, r[11], f)
        end
      end
    elseif f ~= 'p' and f ~= 'q' and not string.find(f, '^%d+$') then
      redis.call('HDEL', key, f)
    end
  end
  redis.call('HSET', key, 'q', cmsgpack.pack(q))
end
extend(key, now + tonumber(ARGV[11]))
return {epoch, role, flag(disabled), deleted}
"""
)

# KEYS[1] the user hash; ARGV: user id, now ms, before (a sequence number: list older ones),
# limit. Returns {principals map or nil, then per session served, newest first: field ..
# binding (the digest), record, sequence}, at most limit of them. The index's numbers are read
# from the hash's field names (HKEYS), not tried one by one: rotations behind a live older
# session leave gaps in the numbers, as many as the user rotated, while the hash holds only the
# live entries (at most max_sessions, with their sessions and the fields p and q). Only the
# sessions of the page are read.
LIST = (
    _HELPERS
    + """
local key, user, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
local pblob = redis.call('HGET', key, 'p')
local found = {pblob or false}
local q = unpacked(redis.call('HGET', key, 'q'))
if not q or type(q[1]) ~= 'number' or type(q[2]) ~= 'number' then return found end
local before = tonumber(ARGV[3])  -- every entry is below q[1] already
local entries = entries_from(key, q[2])
local principal = (unpacked(pblob) or {})[user]
for i = #entries, 1, -1 do
  if #found >= 1 + 3 * limit then break end
  local seq = entries[i]
  if seq < before then
    local f = redis.call('HGET', key, tostring(seq))
    local blob = f and redis.call('HGET', key, f)
    local r = live(blob, now)
    if r and r[11] == seq and r[6] == user and type(r[9]) == 'string' and (r[10] == ''
        or (type(principal) == 'table' and not principal[3] and principal[1] == r[10])) then
      table.insert(found, f .. r[9])
      table.insert(found, blob)
      table.insert(found, seq)
    end
  end
end
return found
"""
)
