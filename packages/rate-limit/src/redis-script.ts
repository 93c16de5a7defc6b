/**
 * The token bucket as one Lua script, so that a decision is one atomic round trip for every policy
 * of a request: all buckets are checked first, and taken from only if every one has the tokens, so
 * a refused request takes from none.
 *
 * Written as GCRA (the Generic Cell Rate Algorithm of ATM networks, ITU-T I.371), which is the
 * token bucket restated: the only state is the time the bucket will be full again (TAT). With
 * `interval` = ms per token and `tau` = capacity × interval, a bucket holds
 * (tau − max(0, TAT − now)) / interval tokens, and taking `cost` moves TAT to
 * max(TAT, now) + cost × interval. One double per bucket, packed with Redis's `struct` library
 * (exact, and cheaper than formatting decimals), written with `SET … PX` so the key vanishes when
 * the bucket is full again (a missing bucket reads as full).
 *
 * The clock is Redis's own (`TIME`), so instances whose clocks disagree still share one exact
 * bucket. Redis 7 replicates a script's effects rather than the script, so `TIME` is allowed.
 *
 * `TOKEN_BUCKET_SCRIPT` is the same for one policy, without the loops and tables (most routes have
 * one policy, and Redis time is the shared resource of a fleet).
 *
 * KEYS[i]: bucket of policy i. ARGV[1]: cost; ARGV[2i], ARGV[2i+1]: interval and tau (ms) of
 * policy i. Reply: allowed (0/1), then per policy: whole tokens left, ms until `cost` tokens are
 * there (0 = it had them), ms until full.
 */
export const TOKEN_BUCKETS_SCRIPT = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local cost = tonumber(ARGV[1])
local n = #KEYS
local starts = {}
local allowed = 1
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local state = redis.call('GET', KEYS[i])
  local tat = now
  if state then
    tat = struct.unpack('<d', state)
    if tat < now then tat = now end
  end
  starts[i] = tat
  if tat + cost * interval - now > ARGV[2 * i + 1] + interval * 1e-9 then allowed = 0 end
end
local reply = { allowed }
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local tau = tonumber(ARGV[2 * i + 1])
  local tat = starts[i]
  local after = tat + cost * interval
  local wait = after - now - tau
  if wait <= interval * 1e-9 then wait = 0 else wait = math.ceil(wait - interval * 1e-9) end
  if allowed == 1 then
    tat = after
    redis.call('SET', KEYS[i], struct.pack('<d', tat), 'PX', math.ceil(tat - now) + 1)
  end
  local full = tat - now
  reply[#reply + 1] = math.floor((tau - full) / interval + 1e-9)
  reply[#reply + 1] = wait
  if full > interval * 1e-9 then reply[#reply + 1] = math.ceil(full - interval * 1e-9) else reply[#reply + 1] = 0 end
end
return reply
`

export const TOKEN_BUCKET_SCRIPT = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local interval = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local slack = interval * 1e-9
local state = redis.call('GET', KEYS[1])
local tat = now
if state then
  tat = struct.unpack('<d', state)
  if tat < now then tat = now end
end
local after = tat + ARGV[1] * interval
local wait = after - now - tau
if wait > slack then
  local full = tat - now
  local reset = 0
  if full > slack then reset = math.ceil(full - slack) end
  return { 0, math.floor((tau - full) / interval + 1e-9), math.ceil(wait - slack), reset }
end
redis.call('SET', KEYS[1], struct.pack('<d', after), 'PX', math.ceil(after - now) + 1)
local full = after - now
local reset = 0
if full > slack then reset = math.ceil(full - slack) end
return { 1, math.floor((tau - full) / interval + 1e-9), 0, reset }
`
