import t, { type Test } from 'tap'
import { LatencyWindow } from '../src/latency-window.js'
import { MAX_VALUE_MS, MIN_VALUE_MS } from '../src/log-buckets.js'
import { exactQuantile, manualClock, normal, seededRandom } from './helpers/random.js'

const QUANTILES = [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]

function checkAccuracy(t: Test, samples: number[]): void {
  const clock = manualClock()
  const window = new LatencyWindow({ now: clock.now })
  for (const s of samples) window.record(s)
  const sorted = [...samples].sort((a, b) => a - b)
  let worst = 0
  for (const q of QUANTILES) {
    const exact = exactQuantile(sorted, q)
    const error = Math.abs(window.quantile(q) - exact) / exact
    worst = Math.max(worst, error)
  }
  t.ok(worst <= 0.01, `worst relative error ${(worst * 100).toFixed(3)}% <= 1%`)
  t.equal(window.count, samples.length)
  t.equal(window.min, sorted[0])
  t.equal(window.max, sorted.at(-1))
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length
  t.ok(Math.abs(window.mean - mean) / mean < 1e-9, 'mean is exact')
}

t.test('quantiles are within 1% of the exact ones', async (t) => {
  const random = seededRandom(42)
  t.test('uniform 1..1000 ms', async (t) => {
    checkAccuracy(t, Array.from({ length: 20_000 }, () => 1 + random() * 999))
  })
  t.test('log-normal around 20 ms', async (t) => {
    checkAccuracy(t, Array.from({ length: 20_000 }, () => Math.exp(Math.log(20) + 0.8 * normal(random))))
  })
  t.test('bimodal with a 100x gap (cache hits and misses)', async (t) => {
    checkAccuracy(t, Array.from({ length: 20_000 }, () => (random() < 0.9 ? 0.5 : 50) * (1 + 0.1 * random())))
  })
  t.test('a constant', async (t) => {
    checkAccuracy(t, Array.from({ length: 1000 }, () => 7.3))
  })
  t.test('the whole range, 1 µs to 100 s', async (t) => {
    checkAccuracy(t, Array.from({ length: 20_000 }, () => MIN_VALUE_MS * (MAX_VALUE_MS / MIN_VALUE_MS) ** random()))
  })
  t.test('a single sample', async (t) => {
    checkAccuracy(t, [3.14])
  })
})

t.test('snapshot matches the individual figures', async (t) => {
  const clock = manualClock(1000)
  const window = new LatencyWindow({ now: clock.now })
  const random = seededRandom(7)
  for (let i = 0; i < 5000; i++) window.record(Math.exp(3 * random()))
  const snap = window.snapshot()
  t.same(snap, {
    count: window.count,
    ratePerSecond: window.ratePerSecond,
    mean: window.mean,
    min: window.min,
    max: window.max,
    p50: window.quantile(0.5),
    p90: window.quantile(0.9),
    p99: window.quantile(0.99),
    p999: window.quantile(0.999)
  })
  t.ok(snap.p50 < snap.p90 && snap.p90 < snap.p99 && snap.p99 <= snap.p999)
})

t.test('an empty window answers 0 for every figure', async (t) => {
  const window = new LatencyWindow({ now: manualClock().now })
  t.same(window.snapshot(), { count: 0, ratePerSecond: 0, mean: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0, p999: 0 })
  t.equal(window.quantile(0.99), 0)
  t.equal(window.count, 0)
})

t.test('samples expire as the window slides', async (t) => {
  const clock = manualClock()
  const window = new LatencyWindow({ windowMs: 10_000, slices: 10, now: clock.now })
  window.record(100) // slice [0, 1000)
  clock.advance(5000)
  window.record(1) // slice [5000, 6000)
  t.equal(window.count, 2)
  t.equal(window.max, 100)

  clock.advance(4999) // t = 9999: the first sample is still in the oldest live slice
  t.equal(window.count, 2)
  clock.advance(1) // t = 10 000: its slice has rotated out
  t.equal(window.count, 1)
  t.equal(window.max, 1)
  t.equal(window.quantile(0.99), 1)

  clock.advance(6000) // t = 16 000: the second sample's slice is gone too
  t.same(window.snapshot().count, 0)
  t.equal(window.quantile(0.5), 0)
})

t.test('a window idle for longer than itself reads empty, then counts afresh', async (t) => {
  const clock = manualClock()
  const window = new LatencyWindow({ windowMs: 1000, slices: 4, now: clock.now })
  for (let i = 0; i < 100; i++) window.record(500)
  clock.advance(3_600_000)
  t.same(window.snapshot(), { count: 0, ratePerSecond: 0, mean: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0, p999: 0 })
  window.record(2)
  window.record(4)
  t.equal(window.count, 2)
  t.equal(window.mean, 3)
  t.equal(window.quantile(1), 4)
  t.ok(Math.abs(window.quantile(0.5) - 2) / 2 <= 0.01)
})

t.test('the histogram total stays equal to the live slices over many rotations', async (t) => {
  const clock = manualClock()
  const window = new LatencyWindow({ windowMs: 1000, slices: 5, now: clock.now })
  const random = seededRandom(3)
  const live: Array<{ at: number; value: number }> = []
  for (let step = 0; step < 3000; step++) {
    clock.advance(random() * 50)
    const value = Math.exp(6 * random())
    window.record(value)
    live.push({ at: clock.now(), value })
  }
  // Samples recorded in slices that are still live: the current one and the four before it.
  const epoch = Math.floor(clock.now() / 200)
  const expected = live.filter((s) => Math.floor(s.at / 200) > epoch - 5).map((s) => s.value).sort((a, b) => a - b)
  t.equal(window.count, expected.length)
  for (const q of [0.1, 0.5, 0.9, 0.99]) {
    const exact = exactQuantile(expected, q)
    t.ok(Math.abs(window.quantile(q) - exact) / exact <= 0.01, `q=${q}`)
  }
})

t.test('record accepts the end time the caller already read', async (t) => {
  const clock = manualClock()
  const window = new LatencyWindow({ windowMs: 1000, slices: 10, now: clock.now })
  window.record(5, 0)
  window.record(6, 2500) // rotates the window by itself, without reading the clock
  clock.advance(2500)
  t.equal(window.count, 1)
  t.equal(window.max, 6)
})

t.test('rate per second', async (t) => {
  const clock = manualClock()
  const window = new LatencyWindow({ windowMs: 10_000, slices: 10, now: clock.now })
  t.equal(window.ratePerSecond, 0)
  window.record(1)
  t.equal(window.ratePerSecond, 1, 'young window: measured over at least one slice')
  for (let i = 0; i < 200; i++) {
    clock.advance(100)
    window.record(1)
  }
  // 20 s of 10/s: the live window spans 9 full slices plus the current one.
  const rate = window.ratePerSecond
  t.ok(Math.abs(rate - 10) < 1, `rate ${rate} ≈ 10/s`)
})

t.test('invalid values are ignored and counted, out-of-range values clamped and counted', async (t) => {
  const window = new LatencyWindow({ now: manualClock().now })
  for (const bad of [Number.NaN, -1, -Infinity, '5', null, undefined, {}]) window.record(bad as number)
  t.equal(window.invalidCount, 7)
  t.equal(window.count, 0)

  window.record(0)
  window.record(0.0000001)
  window.record(1e9)
  window.record(Infinity)
  t.equal(window.clampedCount, 4)
  t.equal(window.count, 4)
  t.equal(window.min, MIN_VALUE_MS)
  t.equal(window.max, MAX_VALUE_MS)
})

t.test('quantile rejects q outside [0, 1]', async (t) => {
  const window = new LatencyWindow({ now: manualClock().now })
  for (const q of [-0.1, 1.1, Number.NaN, '0.5']) {
    t.throws(() => window.quantile(q as number), RangeError)
  }
})

t.test('reset forgets every sample', async (t) => {
  const window = new LatencyWindow({ now: manualClock().now })
  window.record(10)
  window.record(-1)
  window.reset()
  t.equal(window.count, 0)
  t.equal(window.invalidCount, 1)
})

t.test('a default window holds at most 64 KiB', async (t) => {
  const window = new LatencyWindow()
  t.ok(window.byteLength <= 64 * 1024, `${window.byteLength} bytes`)
})

t.test('bad options fail with a code and the option name', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ windowMs: 0 }, /windowMs/],
    [{ windowMs: Number.NaN }, /windowMs/],
    [{ windowMs: '10s' }, /windowMs must be .* got "10s"/],
    [{ slices: 0 }, /slices/],
    [{ slices: 2.5 }, /slices must be an integer/],
    [{ slices: 1000 }, /slices/],
    [{ now: 5 }, /now must be a function/],
    [null, /options/],
    [{ windowMS: 1000 }, /^windowMS is not an option; did you mean windowMs\?$/],
    [{ buckets: 10 }, /^buckets is not an option; the options are windowMs, slices, now$/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => new LatencyWindow(options as never), { code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message })
  }
})
