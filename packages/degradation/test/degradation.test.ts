import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import t from 'tap'
import { Degradation, DIAGNOSTICS_CHANNEL, type DegradationEvent } from '../src/degradation.js'
import { declareFeatures } from '../src/features.js'
import { LevelController, type LoadReading } from '../src/level-controller.js'
import { normalizeLevelOptions } from '../src/level-options.js'
import { Overrides } from '../src/overrides.js'
import { manualClock } from './helpers/clock.js'

function setup() {
  const clock = manualClock()
  const features = declareFeatures([
    { name: 'recommendations', offAtLevel: 1 },
    { name: 'analytics', offAtLevel: 1 },
    { name: 'search_suggestions', offAtLevel: 2 },
    { name: 'notifications', offAtLevel: 2 },
    { name: 'image_processing', offAtLevel: 3 }
  ], 3)
  const controller = new LevelController(normalizeLevelOptions({ thresholds: { latencyMs: [100, 200, 400] }, dwellMs: 1000, minSamples: 1, now: clock.now }))
  const overrides = new Overrides(features, 3, clock.now)
  let latencyMs = 0
  const read = (): LoadReading => ({ latencyMs, samples: 50, eventLoopDelayMs: 0, utilization: 0, pressure: undefined })
  const state = new Degradation(features, controller, overrides, read)
  const events: DegradationEvent[] = []
  state.onEvent((event) => events.push(event))
  return { clock, state, events, setLatency: (ms: number) => { latencyMs = ms } }
}

const on = (state: Degradation) => state.featureNames.filter((name) => state.isOn(name))

t.test('features drop in their configured order as the level rises, and return as it falls', async (t) => {
  const { clock, state, events, setLatency } = setup()
  t.same(on(state), ['recommendations', 'analytics', 'search_suggestions', 'notifications', 'image_processing'])
  setLatency(150)
  state.evaluate()
  t.same(on(state), ['search_suggestions', 'notifications', 'image_processing'])
  setLatency(250)
  state.evaluate()
  t.same(on(state), ['image_processing'])
  setLatency(900)
  state.evaluate()
  t.same(on(state), [])
  t.match(events.at(-1), { type: 'level', from: 2, to: 3, reason: 'latencyMs', value: 900, threshold: 400, off: ['image_processing'], on: [] })
  setLatency(10)
  state.evaluate()
  clock.advance(1000)
  state.evaluate()
  t.equal(state.level, 2)
  t.same(on(state), ['image_processing'])
  t.match(events.at(-1), { type: 'level', from: 3, to: 2, reason: 'recovered', on: ['image_processing'] })
})

t.test('overrides beat the controller; a pin beats the level', async (t) => {
  const { state, events, setLatency } = setup()
  state.overrides.forceLevel(2)
  t.equal(state.level, 2)
  t.match(events.at(-1), { type: 'level', from: 0, to: 2, reason: 'override', off: ['recommendations', 'analytics', 'search_suggestions', 'notifications'] })
  setLatency(900)
  state.evaluate()
  t.equal(state.controller.level, 3)
  t.equal(state.level, 2, 'the forced level holds while the controller says 3')
  state.overrides.pin('recommendations', true)
  state.overrides.pin('image_processing', false)
  t.same(on(state), ['recommendations'])
  state.overrides.clear()
  t.equal(state.level, 3, 'back to the controller')
  const status = state.status()
  t.match(status, { level: 3, controllerLevel: 3, forcedLevel: null, levels: 3, held: false })
  t.same(status.features[0], { name: 'recommendations', on: false, offAtLevel: 1, pinned: null, fallbacksServed: 0 })
})

t.test('events reach diagnostics_channel subscribers, and a throwing listener harms nothing', async (t) => {
  const { state, setLatency } = setup()
  const seen: unknown[] = []
  const listener = (message: unknown) => seen.push(message)
  subscribe(DIAGNOSTICS_CHANNEL, listener)
  t.teardown(() => unsubscribe(DIAGNOSTICS_CHANNEL, listener))
  state.onEvent(() => {
    throw new Error('observer bug')
  })
  setLatency(150)
  state.evaluate()
  state.overrides.pin('search_suggestions', false)
  t.match(seen, [
    { type: 'level', from: 0, to: 1, reason: 'latencyMs' },
    { type: 'override', source: 'local', state: { pins: { search_suggestions: { on: false } } } },
    { type: 'level', from: 1, to: 1, reason: 'override', off: ['search_suggestions'] }
  ])
  t.equal(state.level, 1)
})

t.test('unknown features throw; fallbacks are counted per feature', async (t) => {
  const { state } = setup()
  t.throws(() => state.isOn('nope'), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
  t.throws(() => state.fallbacksServed('nope'), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
  t.equal(state.indexOf('nope'), -1)
  state.recordFallback(state.indexOf('analytics'))
  state.recordFallback(state.indexOf('analytics'))
  t.equal(state.fallbacksServed('analytics'), 2)
})

t.test('evaluate without a reader only expires overrides', async (t) => {
  const features = declareFeatures([{ name: 'a', offAtLevel: 1 }], 1)
  const wall = manualClock(0)
  const controller = new LevelController(normalizeLevelOptions({ levels: 1, thresholds: { latencyMs: [100] } }))
  const state = new Degradation(features, controller, new Overrides(features, 1, wall.now))
  state.overrides.forceLevel(1, { ttlMs: 10 })
  t.equal(state.evaluate(), undefined)
  t.equal(state.level, 1)
  wall.advance(10)
  state.evaluate()
  t.equal(state.level, 0)
  t.equal(state.status().reading, null)
})
