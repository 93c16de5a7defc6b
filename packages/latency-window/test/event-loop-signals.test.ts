import t from 'tap'
import { EventLoopSignals } from '../src/event-loop-signals.js'
import { fakeEventLoop as fakeSources } from './helpers/fake-event-loop.js'

t.test('reports tail delay and utilization of each interval, not since start', async (t) => {
  const fake = fakeSources()
  const signals = new EventLoopSignals({ sources: fake.sources })
  fake.spend(10, 990) // an hour of idling would look like this, only longer
  signals.retain()
  t.teardown(() => signals.release())

  fake.spend(450, 50)
  fake.delay(...Array.from({ length: 99 }, () => 1), 200)
  const busy = signals.sample()
  t.equal(busy.utilization, 0.9, 'utilization of this interval only')
  t.equal(busy.delayMaxMs, 200)
  t.equal(busy.delayP99Ms, 1, 'p99 of 100 samples with one stall')
  t.equal(busy.sampledAt, 1500)

  fake.spend(50, 450)
  fake.delay(2, 3)
  const calm = signals.sample()
  t.equal(calm.utilization, 0.1)
  t.equal(calm.delayMaxMs, 3, 'the stall of the previous interval is forgotten')
  t.same(signals.current, calm)
})

t.test('an interval with no delay samples reads zero delay', async (t) => {
  const fake = fakeSources()
  const signals = new EventLoopSignals({ sources: fake.sources })
  t.same(signals.current, { delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 })
  const reading = signals.sample()
  t.equal(reading.delayP99Ms, 0)
  t.equal(reading.delayMaxMs, 0)
  t.equal(reading.utilization, 0, 'no previous reading yet')
})

t.test('one timer for all users, stopped after the last release', async (t) => {
  const fake = fakeSources()
  const signals = new EventLoopSignals({ sources: fake.sources, intervalMs: 1000 })
  signals.retain()
  signals.retain()
  t.ok(signals.running)
  t.ok(fake.enabled)
  signals.release()
  t.ok(signals.running, 'still one user')
  signals.release()
  t.notOk(signals.running)
  t.notOk(fake.enabled)
  signals.release()
  t.notOk(signals.running, 'an extra release is harmless')
})

t.test('real event loop: a blocking stall shows in the tail delay and utilization', async (t) => {
  // Real time on purpose: the point is that Node's own sources see a blocked loop.
  const signals = new EventLoopSignals({ intervalMs: 10_000, resolutionMs: 1 })
  signals.retain()
  t.teardown(() => signals.release())
  await new Promise((resolve) => setTimeout(resolve, 20))
  signals.sample()
  // Blocks from a timer callback, as a handler doing synchronous work would from an I/O callback.
  setTimeout(() => {
    const end = performance.now() + 60
    while (performance.now() < end) { /* block the loop for 60 ms */ }
  }, 2)
  await new Promise((resolve) => setTimeout(resolve, 80))
  const reading = signals.sample()
  t.ok(reading.delayMaxMs >= 40, `max delay ${reading.delayMaxMs.toFixed(1)} ms`)
  t.ok(reading.utilization > 0.5, `utilization ${reading.utilization.toFixed(2)}`)
})

t.test('bad options fail with a code and the option name', async (t) => {
  const code = 'SPILLWAY_LATENCY_WINDOW_OPTIONS'
  t.throws(() => new EventLoopSignals({ intervalMs: 0 }), { code, message: /intervalMs/ })
  t.throws(() => new EventLoopSignals({ resolutionMs: 0.5 }), { code, message: /resolutionMs/ })
  t.throws(() => new EventLoopSignals({ sources: { ...fakeSources().sources, now: 1 as never } }), { code, message: /sources.now/ })
  t.throws(() => new EventLoopSignals('fast' as never), { code, message: /options/ })
  t.throws(() => new EventLoopSignals({ interval: 100 } as never), { code, message: /^interval is not an option; did you mean intervalMs\?$/ })
  t.doesNotThrow(() => new EventLoopSignals({ intervalMs: 100, resolutionMs: 5, sources: fakeSources().sources }), 'every option known')
})
