/**
 * Guards: a logger that throws when the store goes down (or comes back) once left the fallback's
 * Promise unsettled — the request hung — and rejected another Promise nobody handled, which ends a
 * Node process. A throwing logger now loses its line, nothing else. (Express takes the user's
 * logger; `fastify.log` does not throw, but a custom one may.)
 */
import t from 'tap'
import { StoreFallback, type TransitionLogger } from '../../src/store-fallback.js'
import { RateLimitStats } from '../../src/stats.js'
import { newDecision, type BucketPolicy, type BucketStore } from '../../src/policy.js'

const policy: BucketPolicy = { kind: 'bucket', name: 'p', capacity: 4, refillPerSecond: 1, index: 0, storeId: 'p', windowSeconds: 4 }
const throwing: TransitionLogger = { warn: () => { throw new Error('log sink closed') }, info: () => { throw new Error('log sink closed') } }

t.test('a store failure is decided, and a recovery noticed, however the logger fails', async (t) => {
  let failing = true
  let now = 0
  const store: BucketStore = {
    take: async (_policies, _key, _cost, out) => { if (failing) throw new Error('ECONNREFUSED'); out.source = 'store'; return out },
    close: async () => {}
  }
  const stats = new RateLimitStats(() => now)
  const fallback = new StoreFallback({
    store, onStoreError: 'local', storeTimeoutMs: 1000, probeIntervalMs: 100, instances: 1, maxKeys: 100, stats, log: throwing, now: () => now
  })
  const take = () => Promise.race([
    fallback.take([policy], 'k', 1, newDecision(1)),
    new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 500))
  ])
  const down = await take()
  t.not(down, 'hung', 'the decision settles')
  t.match(down, { source: 'local', allowed: true })
  t.same([stats.degraded, stats.degradations], [true, 1])
  failing = false
  now += 100
  t.match(await take(), { source: 'store' }, 'the probe returns to the store')
  t.same([stats.degraded, stats.recoveries], [false, 1])
})
