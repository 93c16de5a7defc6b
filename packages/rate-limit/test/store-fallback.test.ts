import t from 'tap'
import { StoreFallback, type TransitionLogger } from '../src/store-fallback.js'
import { RateLimitStats } from '../src/stats.js'
import { newDecision, type BucketPolicy, type BucketStore, type Decision } from '../src/policy.js'

const policy: BucketPolicy = { kind: 'bucket', name: 'p', capacity: 4, refillPerSecond: 1, index: 0, storeId: 'p', windowSeconds: 4 }

/** A remote store that answers however the test says. */
class FakeStore implements BucketStore {
  mode: 'ok' | 'fail' | 'hang' = 'ok'
  calls = 0
  async take(_policies: readonly BucketPolicy[], _key: string, _cost: number, out: Decision): Promise<Decision> {
    this.calls++
    if (this.mode === 'fail') throw new Error('ECONNREFUSED')
    if (this.mode === 'hang') return await new Promise<Decision>(() => {})
    out.allowed = true
    out.source = 'store'
    return out
  }
  async close(): Promise<void> {}
}

function setup(onStoreError: 'local' | 'open' | 'closed' = 'local') {
  let now = 0
  const logs: string[] = []
  const log: TransitionLogger = { warn: (_o, m) => { logs.push(`warn ${m}`) }, info: (_o, m) => { logs.push(`info ${m}`) } }
  const remote = new FakeStore()
  const stats = new RateLimitStats(() => now)
  const fallback = new StoreFallback({
    store: remote, onStoreError, storeTimeoutMs: 20, probeIntervalMs: 1000, instances: 2, maxKeys: 100, stats, log, now: () => now
  })
  const take = async () => await fallback.take([policy], 'k', 1, newDecision(1))
  return { remote, stats, fallback, logs, take, advance: (ms: number) => { now += ms } }
}

t.test('store errors switch to a local bucket sized to this instance share, logged once', async (t) => {
  const { remote, stats, fallback, logs, take } = setup()
  t.equal((await take()).source, 'store')
  remote.mode = 'fail'
  const sources = []
  const allowed = []
  for (let i = 0; i < 5; i++) {
    const d = await take()
    sources.push(d.source)
    allowed.push(d.allowed)
  }
  t.same(sources, ['local', 'local', 'local', 'local', 'local'])
  t.same(allowed, [true, true, false, false, false], 'capacity 4 shared by 2 instances: 2 each')
  t.equal(remote.calls, 2, 'once degraded, requests stop hitting the dead store')
  t.equal(stats.storeErrors, 1)
  t.equal(stats.degradations, 1)
  t.equal(stats.fallbackDecisions, 5)
  t.equal(fallback.degraded, true)
  t.same(logs, ['warn rate-limit store unavailable: deciding without it until it answers again'])
  await fallback.close()
})

t.test('probes once per interval and returns to the store when it answers', async (t) => {
  const { remote, stats, logs, take, advance } = setup()
  remote.mode = 'fail'
  await take()
  advance(999)
  await take()
  t.equal(remote.calls, 1, 'no probe before the interval')
  advance(1)
  t.equal((await take()).source, 'local', 'failed probe: still local')
  t.equal(remote.calls, 2)
  remote.mode = 'ok'
  advance(500)
  t.equal((await take()).source, 'local', 'next probe not due yet')
  advance(500)
  t.equal((await take()).source, 'store', 'probe succeeded')
  t.equal((await take()).source, 'store')
  t.equal(stats.degraded, false)
  t.equal(stats.recoveries, 1)
  t.equal(logs.length, 2)
  t.match(logs[1], /^info rate-limit store answers again/)
  t.equal(stats.storeLatency.count, 2, 'round trips recorded')
})

t.test('a store slower than storeTimeoutMs counts as down', async (t) => {
  const { remote, stats, take } = setup()
  remote.mode = 'hang'
  // The timeout timer is unref'd (a server's socket keeps the loop alive); here nothing else would.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const started = performance.now()
  const d = await take()
  t.ok(performance.now() - started < 500)
  t.equal(d.source, 'local')
  t.equal(stats.storeTimeouts, 1)
  t.equal(stats.degraded, true)
})

t.test("onStoreError 'open' lets requests through, 'closed' refuses them with a retry", async (t) => {
  const open = setup('open')
  open.remote.mode = 'fail'
  const o = await open.take()
  t.same([o.allowed, o.source], [true, 'open'])
  const closed = setup('closed')
  closed.remote.mode = 'fail'
  const c = await closed.take()
  t.same([c.allowed, c.source, c.retryAfterMs], [false, 'closed', 1000])
})

t.test('a store that throws synchronously is a failure too', async (t) => {
  const { remote, take } = setup()
  remote.take = () => { throw new Error('boom') }
  t.equal((await take()).source, 'local')
})
