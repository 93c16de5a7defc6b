/**
 * The token bucket as one Lua script, so that a decision is one atomic round trip for every policy
 * of a request: all buckets are refilled and checked first, and taken from only if every one has
 * the tokens, so a refused request takes from none.
 *
 * The clock is Redis's own (`TIME`), so instances whose clocks disagree still share one exact
 * bucket. Redis 7 replicates a script's effects rather than the script, so a non-deterministic
 * `TIME` is allowed. Each bucket is a hash {t = tokens, at = ms} with a PEXPIRE of the time it
 * takes to refill plus a second, so idle buckets vanish (a missing bucket reads as full).
 *
 * KEYS[i]: bucket of policy i. ARGV[1]: cost; ARGV[2i], ARGV[2i+1]: capacity and refill per ms of
 * policy i. Reply: allowed, then per policy: had tokens (0/1), whole tokens left, ms until `cost`
 * tokens are there, ms until full.
 */
export const TOKEN_BUCKET_SCRIPT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local cost = tonumber(ARGV[1])
local epsilon = 1e-9
local n = #KEYS
local tokens = {}
local allowed = 1
for i = 1, n do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 't', 'at')
  local t = capacity
  if state[1] and state[2] then
    local elapsed = now - tonumber(state[2])
    if elapsed < 0 then elapsed = 0 end
    t = math.min(capacity, tonumber(state[1]) + elapsed * rate)
  end
  tokens[i] = t
  if t + epsilon < cost then allowed = 0 end
end
local reply = { allowed }
for i = 1, n do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local t = tokens[i]
  local had = 1
  local wait = 0
  if t + epsilon < cost then
    had = 0
    wait = math.ceil((cost - t) / rate - epsilon)
  end
  if allowed == 1 then
    t = math.max(0, t - cost)
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', t), 'at', string.format('%.17g', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil((capacity - t) / rate) + 1000)
  end
  local reset = 0
  if capacity - t > epsilon then reset = math.ceil((capacity - t) / rate - epsilon) end
  reply[#reply + 1] = had
  reply[#reply + 1] = math.floor(t + epsilon)
  reply[#reply + 1] = wait
  reply[#reply + 1] = reset
end
return reply
`
