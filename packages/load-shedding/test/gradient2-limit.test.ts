import t from 'tap'
import { Gradient2Limit } from '../src/gradient2-limit.js'

const fixedQueue = { queueSize: () => 4 }

t.test('grows while the RTT stays within tolerance of the baseline', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 20, smoothing: 0.2, ...fixedQueue })
  // gradient 1: limit ← 0.8 × 20 + 0.2 × (20 + 4) = 20.8
  t.ok(Math.abs(limit.onSample(0, 20, 20, false) - 20.8) < 1e-9, '0.8 × 20 + 0.2 × (20 + 4)')
  t.equal(limit.longRttMs, 20, 'first sample seeds the baseline')
  t.ok(limit.onSample(100, 25, 20, false) > 20.8, '25 ms is within 1.5 × 20 ms')
})

t.test('shrinks when the RTT rises past the tolerance (a slow dependency)', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 40, smoothing: 1, ...fixedQueue })
  limit.onSample(0, 20, 40, false) // baseline 20 ms, limit 44
  // rtt 60 ms: gradient = 1.5 × ~20 / 60 ≈ 0.5 → limit ≈ 0.5 × 44 + 4 = 26
  const shrunk = limit.onSample(100, 60, 44, false)
  t.ok(shrunk < 27 && shrunk > 25, `limit ${shrunk}`)
})

t.test('the gradient is floored at 0.5: at most halves per sample', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 100, smoothing: 1, queueSize: () => 0 })
  limit.onSample(0, 10, 100, false)
  t.equal(limit.onSample(100, 10_000, 100, false), 50)
})

t.test('an under-used limit is not grown', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 20, ...fixedQueue })
  t.equal(limit.onSample(0, 20, 5, false), 20)
})

t.test('the baseline follows a faster RTT quickly and a slower one slowly', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 20, longWindow: 99, ...fixedQueue })
  limit.onSample(0, 40, 20, false)
  limit.onSample(100, 20, 20, false)
  t.equal(limit.longRttMs, 30, 'halfway down at once')
  limit.onSample(200, 130, 20, false)
  t.equal(limit.longRttMs, 32, 'up by (130 − 30) × 2 / 100')
})

t.test('ignores non-positive and non-finite RTTs; stays within bounds', async (t) => {
  const limit = new Gradient2Limit({ initialLimit: 10, minLimit: 8, maxLimit: 11, ...fixedQueue })
  t.equal(limit.onSample(0, 0, 10, false), 10)
  t.equal(limit.onSample(0, Number.NaN, 10, false), 10)
  for (let i = 0; i < 50; i++) limit.onSample(i, 10, 10, false)
  t.equal(limit.limit, 11)
  for (let i = 0; i < 100; i++) limit.onSample(i, 1000, 10, false)
  t.ok(limit.limit >= 8 && limit.limit < 8.01, `${limit.limit} converges to minLimit`)
})

t.test('bad options', async (t) => {
  t.throws(() => new Gradient2Limit({ rttTolerance: 0.5 }), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /rttTolerance.*0\.5/ })
  t.throws(() => new Gradient2Limit({ smoothing: 0 }), { message: /smoothing/ })
  t.throws(() => new Gradient2Limit({ queueSize: 4 as never }), { message: /queueSize/ })
  t.throws(() => new Gradient2Limit({ tolerance: 2 } as never), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /gradient2\.tolerance is not an option; did you mean rttTolerance\?$/ })
  t.throws(() => new Gradient2Limit({ burst: 2 } as never), { message: /gradient2\.burst is not an option; gradient2 takes initialLimit, minLimit, maxLimit, rttTolerance, smoothing, longWindow, queueSize$/ })
})
