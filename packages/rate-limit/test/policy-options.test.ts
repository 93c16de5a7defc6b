import t from 'tap'
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { PolicySlots, normalizePolicies } from '../src/policy-options.js'

t.test('no policies: one default bucket from capacity and refillPerSecond, defaults 60 and 1', async (t) => {
  const { policies, buckets, flexible } = normalizePolicies({}, '', '', new PolicySlots())
  t.same(policies, [{ kind: 'bucket', name: 'default', capacity: 60, refillPerSecond: 1, index: 0, storeId: 'default', windowSeconds: 60 }])
  t.equal(buckets[0], policies[0])
  t.same(flexible, [])
  t.same(normalizePolicies({ capacity: 5, refillPerSecond: 0.5 }, '', '', new PolicySlots()).buckets.map((b) => [b.capacity, b.windowSeconds]), [[5, 10]])
})

t.test('token buckets first, in their order, each in the next memory-store slot; flexible ones after', async (t) => {
  const daily = new RateLimiterMemory({ points: 100, duration: 86400.5 })
  const slots = new PolicySlots(3)
  const lists = normalizePolicies({
    policies: [{ name: 'daily', limiter: daily }, { name: 'burst', capacity: 5, refillPerSecond: 5 }, { name: 'minute', capacity: 60, refillPerSecond: 1 }]
  }, '', '', slots)
  t.same(lists.policies.map((p) => p.name), ['burst', 'minute', 'daily'])
  t.same(lists.buckets.map((b) => b.index), [3, 4], 'slots from where the counter stood')
  t.same(lists.flexible.map((f) => [f.capacity, f.windowSeconds]), [[100, 86401]])
  t.equal(slots.take(), 5, 'the next caller gets the next slot')
})

t.test('frozen: the lists and each policy', async (t) => {
  const lists = normalizePolicies({ capacity: 2 }, '', '', new PolicySlots())
  t.ok(Object.isFrozen(lists.policies) && Object.isFrozen(lists.buckets) && Object.isFrozen(lists.flexible))
  t.ok(Object.isFrozen(lists.policies[0]))
})

t.test('a route scope prefixes the Redis name of its own buckets, escaped', async (t) => {
  const lists = normalizePolicies({ capacity: 1 }, 'config.rateLimit.', 'GET /a b#', new PolicySlots())
  t.equal(lists.buckets[0]?.storeId, 'GET%20%2Fa%20b%23default')
})

t.test('messages name the option with its prefix; capacity beside policies is refused for the limiter only', async (t) => {
  const slots = new PolicySlots()
  t.throws(() => normalizePolicies({ policies: [{ name: 'a', capacity: 0, refillPerSecond: 1 }] }, 'config.rateLimit.', '', slots),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.policies\[0\]\.capacity must be an integer/ })
  t.throws(() => normalizePolicies({ capacity: 5, policies: [{ name: 'a', capacity: 1, refillPerSecond: 1 }] }, '', '', slots),
    { message: /^capacity must be absent when policies are given/ })
  const inherited = normalizePolicies({ capacity: 5, policies: [{ name: 'a', capacity: 1, refillPerSecond: 1 }] }, 'config.rateLimit.', 'r#', slots)
  t.same(inherited.buckets.map((b) => b.capacity), [1], 'a route inherits the limiter\'s capacity; its own policies win')
})
