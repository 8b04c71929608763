"""The waiting room's Redis scripts. Each runs atomically, so any number of gateways can join,
poll and advance the same queue at once. Time comes in as an argument (milliseconds).

Keys of one show, in this order in every script (``KEYS``):

    cfg   hash   the sale's terms (queue_ms, sale_ms, close_ms, rate, ttl_ms, place_ms,
                 grace_ms, burst_ms)
    q     zset   waiting visitors: user → queue number
    seen  zset   waiting visitors: user → last heartbeat
    adm   hash   admitted visitors: user → "number:admitted_ms"
    st    hash   counters: joined, early, admitted, expired, returned, lapsed, last_ms,
                 carry, serving, expires_set_ms; supply ("open", "paused": every seat left
                 is in someone's hold, "sold_out": every seat is booked, "ended": the show
                 left flash-sale status, holds need no admission any more)
    seq   string the last number handed out after the sale opened
    mark  hash   user → visitors served (admitted + expired) when they joined: their progress
    gone  hash   user → "number:gone_ms" of a place that expired: returning within the grace
                 period gets it back
    new   list   "user:number:admitted_ms" of admissions not yet written to Postgres as
                 notification events; a tick hands them out, the gateway removes what it wrote

Numbers: an arrival before the sale gets a random number below ``EARLY`` (so early arrivals
are in random order, all before later ones); after it, ``EARLY`` + a counter (first come, first
served). The serving counter advances at ``rate`` a minute: each advance admits
``carry + rate × elapsed`` visitors from the head, skipping (and not counting) places whose
visitor stopped sending heartbeats.
"""

from __future__ import annotations

EARLY = 2**50  # numbers below this are early arrivals' random ones; doubles stay exact

_COMMON = """
local cfgk, q, seen, adm, st, seqk, mark, gone, newk =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local now = tonumber(ARGV[1])
local EARLY = @EARLY@

local function config()
    local v = redis.call('HMGET', cfgk, 'queue_ms', 'sale_ms', 'close_ms', 'rate', 'ttl_ms',
                         'place_ms', 'grace_ms', 'burst_ms')
    if not v[1] then return nil end
    return {queue = tonumber(v[1]), sale = tonumber(v[2]), close = tonumber(v[3]),
            rate = tonumber(v[4]), ttl = tonumber(v[5]), place = tonumber(v[6]),
            grace = tonumber(v[7]), burst = tonumber(v[8])}
end

local function split(value)
    local sep = string.find(value, ':', 1, true)
    return string.sub(value, 1, sep - 1), tonumber(string.sub(value, sep + 1))
end

local function served()
    local v = redis.call('HMGET', st, 'admitted', 'expired')
    return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end

-- Places whose visitor sent no heartbeat for place_ms stop counting: out of the line, kept in
-- `gone` for a return within the grace period.
local function sweep(c, limit)
    local stale = redis.call('ZRANGEBYSCORE', seen, '-inf', '(' .. (now - c.place),
                             'LIMIT', 0, limit)
    for _, user in ipairs(stale) do
        local score = redis.call('ZSCORE', q, user)
        if score then
            redis.call('HSET', gone, user, score .. ':' .. now)
            redis.call('ZREM', q, user)
        end
        redis.call('ZREM', seen, user)
    end
    if #stale > 0 then redis.call('HINCRBY', st, 'expired', #stale) end
    return #stale
end

-- Admit at the rate since the last advance, from the head of the line.
local function advance(c, scan)
    if now < c.sale then return 0 end
    local s = redis.call('HMGET', st, 'last_ms', 'carry', 'supply')
    local last = tonumber(s[1]) or c.sale
    if now <= last then return 0 end
    if s[3] and s[3] ~= 'open' then  -- no seat to sell: nobody is let in, no credit builds up
        redis.call('HSET', st, 'last_ms', now, 'carry', 0)
        return 0
    end
    local budget = (tonumber(s[2]) or 0) + c.rate * (now - last) / 60000
    local cap = math.max(1, c.rate * c.burst / 60000)
    if budget > cap then budget = cap end
    local wanted = math.floor(budget)
    local admitted, expired, scanned, serving = 0, 0, 0, nil
    while admitted < wanted and scanned < scan do
        local head = redis.call('ZPOPMIN', q)
        if #head == 0 then break end
        scanned = scanned + 1
        local user, score = head[1], head[2]
        local beat = tonumber(redis.call('ZSCORE', seen, user))
        redis.call('ZREM', seen, user)
        if beat and beat >= now - c.place then
            redis.call('HSET', adm, user, score .. ':' .. now)
            redis.call('RPUSH', newk, user .. ':' .. score .. ':' .. now)
            admitted = admitted + 1
            serving = score
        else
            redis.call('HSET', gone, user, score .. ':' .. now)
            expired = expired + 1
        end
    end
    local carry = budget - admitted
    if redis.call('ZCARD', q) == 0 then carry = 0 end  -- nobody waits: no credit builds up
    redis.call('HSET', st, 'last_ms', now, 'carry', carry)
    if admitted > 0 then
        redis.call('HINCRBY', st, 'admitted', admitted)
        redis.call('HSET', st, 'serving', serving)
        redis.call('PEXPIREAT', newk, c.close + 86400000)  -- as the others, a day after close
    end
    if expired > 0 then redis.call('HINCRBY', st, 'expired', expired) end
    return admitted
end

-- Where a visitor stands: {'admitted', number, admitted_ms} | {'waiting', number, rank,
-- waiting, served_since_join, supply} | {'none'}.
local function standing(c, user, beat)
    local a = redis.call('HGET', adm, user)
    if a then
        local number, at = split(a)
        if now < at + c.ttl then return {'admitted', number, at} end
        return {'lapsed', number, at}
    end
    local score = redis.call('ZSCORE', q, user)
    if not score then return {'none'} end
    if beat then redis.call('ZADD', seen, 'XX', now, user) end
    local v = redis.call('HMGET', st, 'admitted', 'expired', 'supply')
    local since = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
                  - (tonumber(redis.call('HGET', mark, user)) or 0)
    return {'waiting', score, redis.call('ZRANK', q, user), redis.call('ZCARD', q), since,
            v[3] or 'open'}
end
""".replace("@EARLY@", str(EARLY))

# ARGV: now, user, early number. A visitor keeps one place: another join (a tab, a retry)
# finds it; an admitted one gets the same admission; one whose place expired less than the
# grace period ago gets it back; one whose admission lapsed joins at the back.
JOIN = (
    _COMMON
    + """
local user = ARGV[2]
local c = config()
if not c then return {'no_config'} end
if now < c.queue then return {'not_open', c.queue} end
if now >= c.close then return {'closed'} end
local found = standing(c, user, true)
if found[1] == 'admitted' or found[1] == 'waiting' then return found end
local supply = redis.call('HGET', st, 'supply')
if supply == 'sold_out' or supply == 'ended' then return {supply} end
if found[1] == 'lapsed' then
    redis.call('HDEL', adm, user)
    redis.call('HINCRBY', st, 'lapsed', 1)
end
local score, fresh = nil, false
local g = redis.call('HGET', gone, user)
if g then
    redis.call('HDEL', gone, user)
    local number, at = split(g)
    if now - at <= c.grace then
        score = number
        redis.call('HINCRBY', st, 'returned', 1)
    end
end
if not score then
    fresh = now >= c.sale
    if fresh then
        score = EARLY + redis.call('INCR', seqk)
    else
        score = ARGV[3]
        redis.call('HINCRBY', st, 'early', 1)
    end
    redis.call('HINCRBY', st, 'joined', 1)
end
redis.call('ZADD', q, score, user)
redis.call('ZADD', seen, now, user)
redis.call('HSET', mark, user, served())
local waiting = redis.call('ZCARD', q)
-- A new arrival after the opening is last in line; anyone else is looked up.
local rank = fresh and waiting - 1 or redis.call('ZRANK', q, user)
return {'waiting', score, rank, waiting, 0, redis.call('HGET', st, 'supply') or 'open'}
"""
)

# ARGV: now, user, heartbeat (1/0). Where the visitor stands, and (with a heartbeat) that they
# are still there.
STATUS = (
    _COMMON
    + """
local c = config()
if not c then return {'no_config'} end
return standing(c, ARGV[2], ARGV[3] == '1')
"""
)

# ARGV: now, user. Give up one's place (or admission).
LEAVE = (
    _COMMON
    + """
local user = ARGV[2]
local left = redis.call('ZREM', q, user) + redis.call('HDEL', adm, user)
redis.call('ZREM', seen, user)
redis.call('HDEL', gone, user)
redis.call('HDEL', mark, user)
return left
"""
)

# ARGV: now, sweep limit, scan limit, key lifetime (ms after close). Expire abandoned places,
# admit at the rate, and (once a minute) make sure every key ends after the show. Answers
# {admitted, expired, waiting, the first 100 admissions not yet written to Postgres}.
TICK = (
    _COMMON
    + """
local c = config()
if not c then return {'no_config'} end
local expired = sweep(c, tonumber(ARGV[2]))
local admitted = advance(c, tonumber(ARGV[3]))
local set = tonumber(redis.call('HGET', st, 'expires_set_ms')) or 0
if now - set > 60000 then
    local at = c.close + tonumber(ARGV[4])
    for i = 1, 9 do redis.call('PEXPIREAT', KEYS[i], at) end
    redis.call('HSET', st, 'expires_set_ms', now)
    redis.call('PEXPIREAT', st, at)
end
return {admitted, expired, redis.call('ZCARD', q), redis.call('LRANGE', newk, 0, 99)}
"""
)

# ARGV: now, replace (1/0), then field, value pairs. Write the sale's terms. A rate change
# first admits everyone due at the old rate up to now.
CONFIGURE = (
    _COMMON
    + """
local c = config()
if c and ARGV[2] ~= '1' then return 0 end
if c then advance(c, 100000) end
for i = 3, #ARGV, 2 do redis.call('HSET', cfgk, ARGV[i], ARGV[i + 1]) end
redis.call('HDEL', st, 'expires_set_ms')
return 1
"""
)

# ARGV: now, supply ("open", "paused", "sold_out" or "ended"), force (1/0): what the show has
# left to sell. A line that ended stays so unless forced (the show is put in a flash sale again).
SUPPLY = (
    _COMMON
    + """
local was = redis.call('HGET', st, 'supply') or 'open'
if was == 'ended' and ARGV[3] ~= '1' then return was end
if was ~= ARGV[2] then
    redis.call('HSET', st, 'supply', ARGV[2])
    if ARGV[2] == 'open' then redis.call('HSET', st, 'last_ms', now, 'carry', 0) end
end
return was
"""
)

# ARGV: now. The counters and the terms, for operators.
STATS = (
    _COMMON
    + """
local c = config()
if not c then return {'no_config'} end
return {redis.call('HGETALL', st), redis.call('ZCARD', q), redis.call('HLEN', adm)}
"""
)
