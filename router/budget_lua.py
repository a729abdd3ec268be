"""The budget Lua scripts. Each runs atomically in Redis: no read-modify-write races.

Per tenant (every key carries the `{tenant}` hash tag, so one Cluster slot):

    <p>b:{t}:d:YYYY-MM-DD   hash  usd, tok (committed), rusd, rtok (reserved),
    <p>b:{t}:m:YYYY-MM      hash      usd:tier:<tier>, tok:tier:<tier>, n:tier:<tier>,
                                      usd:strategy:<s>, tok:strategy:<s>, n:strategy:<s>
    <p>b:{t}:res            zset  reservation id -> expiry (ms)
    <p>b:{t}:resd           hash  reservation id -> "usd<US>tokens<US>daykey<US>monthkey",
                                  or "=" once settled (a tombstone, reclaimed like a record)

Money is integer micro-USD. A reservation is charged to the periods it was made in; settling
commits to those same periods.
"""

from __future__ import annotations

SEP = "\x1f"  # unit separator inside reservation records

# Every amount goes to HINCRBY through these: it takes only integer strings, never "-0" (what
# `-tonumber("0")` prints: settling a zero-cost request failed on it) nor "1.5". `neg` is
# 0 - x, which is +0 for x = 0. Amounts arrive as integers; fractions round to nearest.
INTEGERS = r"""
local function int(v)
  local n = tonumber(v) or 0
  if n < 0 then return string.format('%d', -math.floor(-n + 0.5)) end
  return string.format('%d', math.floor(n + 0.5))
end
local function neg(v) return int(0 - (tonumber(v) or 0)) end
"""

# KEYS: day, month, res, resd [, result cache key]
# ARGV: now_ms, ttl_ms, id, cap_day_usd, cap_month_usd, cap_day_tok, cap_month_tok (-1 = none),
#       n, then n pairs (usd_micro, tokens), most capable plan first.
# With a result cache key (same tenant, same hash tag) the script first reads it: a cached
# answer returns {-1, 0, nil, nil, nil, nil, value} and reserves nothing, so a cache lookup and
# a reservation cost one round trip.
# Otherwise it reclaims expired reservations, then reserves the first candidate that fits every
# cap (cap - committed - reserved >= estimate). n = 0 only reclaims and reports.
# Returns {chosen (1-based, 0 = none), reclaimed, rem_day_usd, rem_month_usd, rem_day_tok,
#          rem_month_tok}; a remaining is nil where there is no cap, and is measured after the
# reservation when one was made.
RESERVE = INTEGERS + r"""
if KEYS[5] then
  local cached = redis.call('GET', KEYS[5])
  if cached then return {-1, 0, false, false, false, false, cached} end
end
local now = tonumber(ARGV[1])
local reclaimed = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 256)
for _, rid in ipairs(expired) do
  local rec = redis.call('HGET', KEYS[4], rid)
  if rec and rec ~= '=' then
    local u, t, dk, mk = string.match(rec, '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$')
    for _, k in ipairs({dk, mk}) do
      redis.call('HINCRBY', k, 'rusd', neg(u))
      redis.call('HINCRBY', k, 'rtok', neg(t))
    end
    reclaimed = reclaimed + 1
  end
  redis.call('HDEL', KEYS[4], rid)
  redis.call('ZREM', KEYS[3], rid)
end
local function num(v) return tonumber(v) or 0 end
local d = redis.call('HMGET', KEYS[1], 'usd', 'tok', 'rusd', 'rtok')
local m = redis.call('HMGET', KEYS[2], 'usd', 'tok', 'rusd', 'rtok')
local caps = {tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local used = {num(d[1]) + num(d[3]), num(m[1]) + num(m[3]),
              num(d[2]) + num(d[4]), num(m[2]) + num(m[4])}
local n = tonumber(ARGV[8])
local chosen, eu, et, record = 0, 0, 0, ''
-- A retried call (its first reply was lost, e.g. in a failover) finds its own reservation:
-- it answers with the candidate it holds and reserves nothing twice.
local prev, again = false, false
if n > 0 then prev = redis.call('HGET', KEYS[4], ARGV[3]) end
if prev and prev ~= '=' then
  again = true
  for c = 1, n do
    if string.sub(prev, 1, #ARGV[7 + 2 * c] + #ARGV[8 + 2 * c] + 2)
        == ARGV[7 + 2 * c] .. '\31' .. ARGV[8 + 2 * c] .. '\31' then
      chosen = c
      break
    end
  end
  n = 0
end
for c = 1, n do
  local cu, ct = tonumber(ARGV[7 + 2 * c]), tonumber(ARGV[8 + 2 * c])
  local fits = true
  for i = 1, 4 do
    local est = cu
    if i > 2 then est = ct end
    if caps[i] >= 0 and caps[i] - used[i] < est then fits = false end
  end
  if fits then
    chosen, eu, et = c, cu, ct
    record = ARGV[7 + 2 * c] .. '\31' .. ARGV[8 + 2 * c]
    break
  end
end
if chosen > 0 and not again then
  for _, k in ipairs({KEYS[1], KEYS[2]}) do
    redis.call('HINCRBY', k, 'rusd', int(eu))
    redis.call('HINCRBY', k, 'rtok', int(et))
  end
  redis.call('PEXPIRE', KEYS[1], 40 * 86400000)
  redis.call('PEXPIRE', KEYS[2], 400 * 86400000)
  local ttl = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[3], record .. '\31' .. KEYS[1] .. '\31' .. KEYS[2])
  redis.call('PEXPIRE', KEYS[3], ttl + 86400000)
  redis.call('PEXPIRE', KEYS[4], ttl + 86400000)
  used = {used[1] + eu, used[2] + eu, used[3] + et, used[4] + et}
end
local out = {chosen, reclaimed}
for i = 1, 4 do
  if caps[i] >= 0 then out[i + 2] = caps[i] - used[i] else out[i + 2] = false end
end
return out
"""

# KEYS: day, month, res, resd (the reservation's own periods) [, result cache key]
# ARGV: id, usd_micro, tokens, tier, strategy, commit (1 = settle, 0 = release only), now_ms
#       [, cache value, cache ttl_s]
# Releases the reservation (if still live), commits the actual cost with its breakdown and,
# with a 5th key, writes the result cache entry: settle and cache write in one round trip
# (the cache key carries the same `{tenant}` tag, so the same Cluster slot).
# The id is then kept as a tombstone ('=') for TOMBSTONE_MS, so a retried call (its first
# reply lost in a failover) commits nothing twice.
# Returns {live (0 = had expired or never existed, 2 = settled before), day_usd, day_tok,
#          month_usd, month_tok}.
TOMBSTONE_MS = 600_000
SETTLE = INTEGERS + r"""
local live = 0
local rec = redis.call('HGET', KEYS[4], ARGV[1])
if rec == '=' then
  live = 2
else
  if rec then
    local u, t = string.match(rec, '^([^\31]*)\31([^\31]*)\31')
    for _, k in ipairs({KEYS[1], KEYS[2]}) do
      redis.call('HINCRBY', k, 'rusd', neg(u))
      redis.call('HINCRBY', k, 'rtok', neg(t))
    end
    live = 1
  end
  if ARGV[6] == '1' then
    local u, t = tonumber(ARGV[2]), tonumber(ARGV[3])
    for _, k in ipairs({KEYS[1], KEYS[2]}) do
      redis.call('HINCRBY', k, 'usd', int(u))
      redis.call('HINCRBY', k, 'tok', int(t))
      for _, dim in ipairs({{'tier', ARGV[4]}, {'strategy', ARGV[5]}}) do
        if dim[2] ~= '' then
          redis.call('HINCRBY', k, 'usd:' .. dim[1] .. ':' .. dim[2], int(u))
          redis.call('HINCRBY', k, 'tok:' .. dim[1] .. ':' .. dim[2], int(t))
          redis.call('HINCRBY', k, 'n:' .. dim[1] .. ':' .. dim[2], 1)
        end
      end
    end
    redis.call('PEXPIRE', KEYS[1], 40 * 86400000)
    redis.call('PEXPIRE', KEYS[2], 400 * 86400000)
  end
  redis.call('HSET', KEYS[4], ARGV[1], '=')
  redis.call('ZADD', KEYS[3], tonumber(ARGV[7]) + """ + str(TOMBSTONE_MS) + r""", ARGV[1])
  redis.call('PEXPIRE', KEYS[3], """ + str(TOMBSTONE_MS) + r""" + 86400000)
  redis.call('PEXPIRE', KEYS[4], """ + str(TOMBSTONE_MS) + r""" + 86400000)
  if KEYS[5] then redis.call('SET', KEYS[5], ARGV[8], 'EX', ARGV[9]) end
end
local d = redis.call('HMGET', KEYS[1], 'usd', 'tok')
local m = redis.call('HMGET', KEYS[2], 'usd', 'tok')
return {live, tonumber(d[1]) or 0, tonumber(d[2]) or 0, tonumber(m[1]) or 0, tonumber(m[2]) or 0}
"""

# KEYS: period hashes to reset. Clears committed spend, keeps in-flight reservations.
RESET = r"""
for _, k in ipairs(KEYS) do
  for _, f in ipairs(redis.call('HKEYS', k)) do
    if f ~= 'rusd' and f ~= 'rtok' then redis.call('HDEL', k, f) end
  end
end
return #KEYS
"""
