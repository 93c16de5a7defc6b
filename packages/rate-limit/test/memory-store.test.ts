import t from 'tap'
import { MemoryStore } from '../src/memory-store.js'
import { newDecision, type BucketPolicy } from '../src/policy.js'

const policy = (index: number, capacity: number, refillPerSecond: number, name = 'p'): BucketPolicy => ({
  kind: 'bucket', name, capacity, refillPerSecond, index, storeId: name, windowSeconds: Math.ceil(capacity / refillPerSecond)
})

t.test('decides synchronously: no Promise', async (t) => {
  const store = new MemoryStore({ now: () => 0 })
  const decision = store.take([policy(0, 1, 1)], 'k', 1, newDecision(1))
  t.notOk((decision as unknown) instanceof Promise)
  t.equal(decision.allowed, true)
})

t.test('several policies: all or none', async (t) => {
  let now = 0
  const store = new MemoryStore({ now: () => now })
  const policies = [policy(0, 3, 1, 'a'), policy(1, 1, 1, 'b')]
  const out = newDecision(2)
  t.equal(store.take(policies, 'k', 1, out).allowed, true)
  store.take(policies, 'k', 1, out)
  t.equal(out.allowed, false)
  t.same(out.results.map((r) => [r.allowed, r.remaining]), [[true, 2], [false, 0]], 'a kept its 2 tokens')
  t.equal(out.retryAfterMs, 1000)
  now = 1000
  t.equal(store.take(policies, 'k', 1, out).allowed, true)
  t.equal(out.results[0]?.remaining, 2, '3 − 1 − (nothing for the refusal) + 1 refilled, capped at 3, − 1')
})

t.test('memory stays bounded under a flood of distinct keys', async (t) => {
  let now = 0
  const store = new MemoryStore({ maxKeys: 1000, now: () => now })
  const p = policy(0, 10, 1)
  const out = newDecision(1)
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < 200_000; i++) {
    store.take([p], `spoofed-${i}`, 1, out)
    if (i % 1000 === 0) now += 1
  }
  t.ok(store.size(p) <= 1000, `tracked ${store.size(p)} ≤ 1000`)
  t.ok(store.evicted > 0, 'non-full buckets were evicted once the cap was reached')
  globalThis.gc?.()
  t.ok(process.memoryUsage().heapUsed - before < 50 * 1024 * 1024, 'heap did not grow with the flood')
})

t.test('at the cap, full (idle) buckets go first and busy ones stay', async (t) => {
  let now = 0
  const store = new MemoryStore({ maxKeys: 10, now: () => now })
  const p = policy(0, 2, 1)
  const out = newDecision(1)
  store.take([p], 'busy', 2, out)
  for (let i = 0; i < 9; i++) store.take([p], `idle-${i}`, 1, out)
  now = 1500 // the idle buckets (1 token short) are full again; "busy" (2 short) is not
  store.take([p], 'newcomer', 1, out)
  t.equal(store.size(p), 2, 'the nine full buckets were dropped')
  t.equal(store.evicted, 0, 'without evicting a bucket that still mattered')
  t.equal(store.take([p], 'busy', 2, out).allowed, false, 'busy kept its state: 1.5 tokens')
})

t.test('share scales capacity and refill (the local fallback of one instance among several)', async (t) => {
  let now = 0
  const store = new MemoryStore({ share: 1 / 4, now: () => now })
  const p = policy(0, 8, 4)
  const out = newDecision(1)
  t.equal(store.take([p], 'k', 1, out).allowed, true)
  t.equal(store.take([p], 'k', 1, out).allowed, true)
  t.equal(store.take([p], 'k', 1, out).allowed, false, 'capacity 8/4 = 2')
  t.equal(out.retryAfterMs, 1000, 'refill 4/4 = 1 per second')
  now = 1000
  t.equal(store.take([p], 'k', 1, out).allowed, true)
  await store.close()
})
