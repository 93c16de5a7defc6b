import t from 'tap'
import { LevelController, type LoadReading } from '../src/level-controller.js'
import { normalizeLevelOptions } from '../src/level-options.js'
import { manualClock } from './helpers/clock.js'

function reading(latencyMs: number, extra: Partial<LoadReading> = {}): LoadReading {
  return { latencyMs, samples: 100, eventLoopDelayMs: 0, utilization: 0, pressure: undefined, ...extra }
}

function controller(clock = manualClock(), options = {}) {
  return new LevelController(normalizeLevelOptions({
    thresholds: { latencyMs: [100, 200, 400] },
    recoverRatio: 0.5,
    dwellMs: 1000,
    minSamples: 10,
    now: clock.now,
    ...options
  }))
}

t.test('the level is the number of thresholds reached, and goes up at once', async (t) => {
  const c = controller()
  t.equal(c.evaluate(reading(99)), undefined)
  t.equal(c.level, 0)
  const change = c.evaluate(reading(250))
  t.match(change, { from: 0, to: 2, reason: 'latencyMs', value: 250, threshold: 200 })
  t.equal(c.level, 2, 'straight from 0 to 2, no step through 1')
  c.evaluate(reading(5000))
  t.equal(c.level, 3, 'never above levels')
})

t.test('down one level at a time, each after dwellMs below the lower threshold', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  c.evaluate(reading(500))
  t.equal(c.level, 3)
  // Lower threshold of level 3 is 400 × 0.5 = 200.
  c.evaluate(reading(10))
  clock.advance(999)
  t.equal(c.evaluate(reading(10)), undefined, 'not before the dwell')
  t.equal(c.level, 3)
  clock.advance(1)
  t.match(c.evaluate(reading(10)), { from: 3, to: 2, reason: 'recovered' })
  c.evaluate(reading(10))
  t.equal(c.level, 2, 'one step per dwell, even when the signal is far below')
  clock.advance(1000)
  c.evaluate(reading(10))
  t.equal(c.level, 1)
  clock.advance(1000)
  c.evaluate(reading(10))
  t.equal(c.level, 0)
  clock.advance(5000)
  t.equal(c.evaluate(reading(10)), undefined)
})

t.test('between the lower and the upper threshold the level holds and the dwell restarts', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  c.evaluate(reading(150))
  t.equal(c.level, 1)
  // Level 1: upper 100, lower 50. 70 is in the band.
  for (let i = 0; i < 20; i++) {
    clock.advance(500)
    c.evaluate(reading(70))
  }
  t.equal(c.level, 1, 'held for 10 s in the band')
  clock.advance(500)
  c.evaluate(reading(40))
  clock.advance(900)
  c.evaluate(reading(70))
  clock.advance(500)
  c.evaluate(reading(40))
  t.equal(c.level, 1, 'a return into the band restarted the dwell')
  clock.advance(1000)
  c.evaluate(reading(40))
  t.equal(c.level, 0)
})

t.test('an input flapping around a threshold moves the level once, not back and forth', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  const changes = []
  for (let i = 0; i < 200; i++) {
    clock.advance(250)
    // Alternates between just above level 2's threshold and well below level 2's lower one.
    const change = c.evaluate(reading(i % 2 === 0 ? 210 : 20))
    if (change !== undefined) changes.push(change)
  }
  t.equal(changes.length, 1, 'one change in 50 s of flapping input')
  t.equal(c.level, 2)
  // A slower flap (below for 750 ms, above for 250 ms) does not let the dwell complete either.
  for (let i = 0; i < 200; i++) {
    clock.advance(250)
    const change = c.evaluate(reading(i % 4 === 3 ? 210 : 20))
    if (change !== undefined) changes.push(change)
  }
  t.equal(changes.length, 1)
})

t.test('too few samples: latency is not judged and the level holds', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  c.evaluate(reading(5000, { samples: 9 }))
  t.equal(c.level, 0, 'nine slow samples do not raise the level')
  t.ok(c.held)
  c.evaluate(reading(500))
  t.equal(c.level, 3)
  t.notOk(c.held)
  for (let i = 0; i < 10; i++) {
    clock.advance(1000)
    c.evaluate(reading(0, { samples: 0 }))
  }
  t.equal(c.level, 3, 'an empty window does not bring the level down')
  t.ok(c.held)
  c.evaluate(reading(10))
  clock.advance(1000)
  c.evaluate(reading(10))
  t.equal(c.level, 2, 'judged again once samples are back')
})

t.test('the requests in flight read as latency: the higher of the two, each from minSamples samples up', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  t.match(c.evaluate(reading(5, { inFlightAgeMs: 250, inFlightSamples: 30 })), { to: 2, reason: 'latencyMs', value: 250, threshold: 200 },
    'a hung dependency, seen before any slow request completed')
  c.reset()
  t.equal(c.evaluate(reading(5, { inFlightAgeMs: 5000, inFlightSamples: 9 })), undefined, 'fewer than minSamples: not judged')
  t.match(c.evaluate(reading(150, { inFlightAgeMs: 90, inFlightSamples: 30 })), { to: 1, value: 150 }, 'the window when it reads higher')
  t.match(c.evaluate(reading(0, { samples: 0, inFlightAgeMs: 450, inFlightSamples: 12 })), { to: 3, value: 450 },
    'enough in flight and an empty window: judged')
  t.notOk(c.held)
  c.evaluate(reading(0, { samples: 0, inFlightAgeMs: 0, inFlightSamples: 3 }))
  t.ok(c.held, 'neither has enough: the level holds')
  for (let i = 0; i < 3; i++) {
    clock.advance(1000)
    c.evaluate(reading(0, { samples: 0, inFlightSamples: 3 }))
  }
  t.equal(c.level, 3, 'and does not come down')
})

t.test('event-loop delay, utilization and published pressure raise the level too', async (t) => {
  const clock = manualClock()
  const c = new LevelController(normalizeLevelOptions({
    thresholds: { latencyMs: [100, 200, 400], eventLoopDelayMs: [50, 100, 200], utilization: [0.9, 0.95, 0.99], pressure: [0.2, 0.5, 0.8] },
    dwellMs: 0,
    now: clock.now
  }))
  t.match(c.evaluate(reading(0, { eventLoopDelayMs: 120 })), { to: 2, reason: 'eventLoopDelayMs', threshold: 100 })
  t.match(c.evaluate(reading(0, { pressure: 0.85 })), { to: 3, reason: 'pressure' })
  c.reset()
  t.match(c.evaluate(reading(0, { utilization: 0.96 })), { to: 2, reason: 'utilization' })
  c.reset()
  t.equal(c.evaluate(reading(0, { pressure: undefined, eventLoopDelayMs: Number.NaN })), undefined, 'absent or bad figures are ignored')
})

t.test('the default thresholds apply to 3 levels; signals set to false are ignored', async (t) => {
  const c = new LevelController(normalizeLevelOptions())
  t.same(c.thresholds.latencyMs, [250, 500, 1000])
  t.equal(c.thresholds.utilization, false)
  t.equal(c.dwellMs, 10_000)
  t.equal(c.minSamples, 20)
  const onlyPressure = new LevelController(normalizeLevelOptions({ levels: 2, thresholds: { pressure: [0.5, 0.9] } }))
  t.equal(onlyPressure.thresholds.latencyMs, false, 'defaults describe 3 levels only')
  t.equal(onlyPressure.evaluate(reading(0, { samples: 0, pressure: 0.95 }))?.to, 2, 'no latency ladder: too few samples does not hold')
})

t.test('the in-flight ages judged are the highest within the last dwell: an instant of young requests does not bring the level down', async (t) => {
  const clock = manualClock()
  const c = controller(clock)
  // A dependency slows down: the window (10 s of fast samples) still reads 5 ms, the requests in
  // flight read 120 ms when the evaluation falls late in their life and ~0 when it falls early.
  t.match(c.evaluate(reading(5, { inFlightAgeMs: 120, inFlightSamples: 30 })), { to: 1, value: 120 })
  // High readings 1.3 s apart: more than the dwell (1 s) of young requests between them.
  const flaps = []
  for (let i = 1; i <= 52; i++) {
    clock.advance(100)
    const change = c.evaluate(reading(5, { inFlightAgeMs: i % 13 === 0 ? 110 : 3, inFlightSamples: 30 }))
    if (change !== undefined) flaps.push(change)
  }
  t.same(flaps, [], 'no change in 5.2 s of mostly young requests')
  t.equal(c.level, 1)
  // The dependency is fast again: the ages stay low, and the level comes down one dwell after the last high one.
  const changes = []
  for (let i = 0; i < 30; i++) {
    clock.advance(100)
    const change = c.evaluate(reading(5, { inFlightAgeMs: 2, inFlightSamples: 30 }))
    if (change !== undefined) changes.push(change)
  }
  t.match(changes, [{ from: 1, to: 0, reason: 'recovered' }], 'then down, once')
})
