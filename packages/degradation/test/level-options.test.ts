import t from 'tap'
import { DEFAULT_LEVELS, normalizeLevelOptions } from '../src/level-options.js'

t.test('every default applied, the settings frozen, the user\'s ladders copied', async (t) => {
  const latencyMs = [100, 200, 400]
  const now = () => 7
  const settings = normalizeLevelOptions({ thresholds: { latencyMs }, now })
  t.same(settings, {
    levels: DEFAULT_LEVELS,
    thresholds: { latencyMs: [100, 200, 400], eventLoopDelayMs: [100, 200, 500], utilization: false, pressure: [0.25, 0.5, 0.75] },
    recoverRatio: 0.8,
    dwellMs: 10_000,
    minSamples: 20,
    now
  })
  t.ok(Object.isFrozen(settings) && Object.isFrozen(settings.thresholds) && Object.isFrozen(settings.thresholds.latencyMs))
  latencyMs[0] = 1
  t.same(settings.thresholds.latencyMs, [100, 200, 400], 'a later change to the user\'s array changes nothing')
  t.type(normalizeLevelOptions().now(), 'number', 'a monotonic clock by default')
})

t.test('a bad option throws through the factory given', async (t) => {
  const fail = (message: string) => Object.assign(new Error(message), { code: 'MINE' })
  t.throws(() => normalizeLevelOptions({ dwellMs: -1 }, fail), { code: 'MINE', message: /^dwellMs .*got -1/ })
  t.throws(() => normalizeLevelOptions({ now: 'x' as never }, fail), { code: 'MINE', message: /^now must be a function, got "x"/ })
})

t.test('bad options throw SPILLWAY_DEGRADATION_OPTIONS naming the option and the value', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ levels: 0 }, /^levels must be an integer in \[1, 16\], got 0/],
    [{ thresholds: { latencyMs: [100, 50, 400] } }, /^thresholds\.latencyMs must be false or an ascending array of 3 numbers.*got an array of 3/],
    [{ thresholds: { latencyMs: [100, 200] } }, /thresholds\.latencyMs.*got an array of 2/],
    [{ thresholds: { pressure: [0.5, 0.9, 1.5] } }, /thresholds\.pressure.*\(0, 1\]/],
    [{ thresholds: { cpu: [0.5, 0.7, 0.9] } }, /^thresholds\.cpu is not an option; thresholds takes latencyMs, eventLoopDelayMs, utilization, pressure$/],
    [{ thresholds: { latency: [1, 2, 3] } }, /^thresholds\.latency is not an option; did you mean latencyMs\?$/],
    [{ level: 2 }, /^level is not an option; did you mean levels\?$/],
    [{ levels: 2 }, /^thresholds must be at least one signal with 2 thresholds, got undefined/],
    [{ recoverRatio: 0 }, /^recoverRatio .*got 0/],
    [{ dwellMs: -1 }, /^dwellMs .*got -1/],
    [{ minSamples: 1.5 }, /^minSamples must be an integer.*got 1\.5/],
    ['fast', /^options must be an object, got "fast"/]
  ]
  for (const [input, message] of cases) {
    t.throws(() => normalizeLevelOptions(input as never), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, String(message))
  }
})
