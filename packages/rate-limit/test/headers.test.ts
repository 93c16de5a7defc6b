import t from 'tap'
import { policyHeader, rateLimitHeader, sfString, tightestPolicy } from '../src/headers.js'
import { newDecision, type Policy } from '../src/policy.js'

const bucket = (name: string, capacity: number, refillPerSecond: number): Policy => ({
  kind: 'bucket', name, capacity, refillPerSecond, index: 0, storeId: name, windowSeconds: Math.max(1, Math.ceil(capacity / refillPerSecond))
})

t.test('sf-string: quotes and backslashes are escaped (RFC 8941 §3.3.3)', async (t) => {
  t.equal(sfString('burst'), '"burst"')
  t.equal(sfString('a"b\\c'), '"a\\"b\\\\c"')
})

t.test('RateLimit-Policy lists every policy with q and w (draft-11 §3)', async (t) => {
  t.equal(policyHeader([bucket('burst', 100, 100 / 60), bucket('daily', 1000, 1000 / 86400)]), '"burst";q=100;w=60, "daily";q=1000;w=86400')
  t.equal(policyHeader([bucket('fast', 10, 1000)]), '"fast";q=10;w=1', 'sub-second windows round up to 1 s: the draft has no fractions')
})

t.test('RateLimit: r and t per policy; refusing policies report t = Retry-After', async (t) => {
  const decision = newDecision(2)
  decision.allowed = false
  decision.retryAfterMs = 2500
  Object.assign(decision.results[0]!, { allowed: true, remaining: 4, retryAfterMs: 0, resetMs: 1200 })
  Object.assign(decision.results[1]!, { allowed: false, remaining: 0, retryAfterMs: 2500, resetMs: 9000 })
  t.equal(rateLimitHeader(['"a"', '"b"'], decision), '"a";r=4;t=2, "b";r=0;t=3')
  t.equal(tightestPolicy(decision), 1)
  decision.allowed = true
  decision.results[1]!.allowed = true
  t.equal(rateLimitHeader(['"a"', '"b"'], decision), '"a";r=4;t=2, "b";r=0;t=9', 'allowed: t is the time until full')
})
