import t from 'tap'
import { declareFeatures } from '../src/features.js'
import { Overrides, type OverrideChangeSource } from '../src/overrides.js'
import { manualClock } from './helpers/clock.js'

const features = declareFeatures([
  { name: 'recommendations', offAtLevel: 1 },
  { name: 'search', offAtLevel: 2 }
], 3)

t.test('force a level and pin features, each with an optional expiry', async (t) => {
  const wall = manualClock(1_000_000)
  const overrides = new Overrides(features, 3, wall.now)
  const sources: OverrideChangeSource[] = []
  overrides.onChange((_state, source) => sources.push(source))
  t.equal(overrides.forcedLevel, undefined)
  overrides.forceLevel(2, { ttlMs: 5000, reason: 'incident 42' })
  overrides.pin('search', true)
  overrides.pin('recommendations', false, { ttlMs: 1000 })
  t.equal(overrides.forcedLevel, 2)
  t.equal(overrides.pinOf(1), 1)
  t.equal(overrides.pinOf(0), 0)
  t.same(overrides.snapshot(), {
    level: { level: 2, expiresAt: 1_005_000, reason: 'incident 42' },
    pins: { recommendations: { on: false, expiresAt: 1_001_000 }, search: { on: true, expiresAt: null } },
    updatedAt: 1_000_002
  }, 'versions strictly increase within one millisecond')
  wall.advance(999)
  t.equal(overrides.expire(), false)
  wall.advance(1)
  t.equal(overrides.expire(), true, 'the pin expired')
  t.equal(overrides.pinOf(0), -1)
  wall.advance(4000)
  overrides.expire()
  t.equal(overrides.forcedLevel, undefined, 'the level expired')
  t.equal(overrides.pinOf(1), 1, 'a pin without ttl stays')
  t.same(sources, ['local', 'local', 'local', 'expired', 'expired'])
  overrides.unpin('search')
  t.equal(overrides.pinOf(1), -1)
  overrides.forceLevel(0)
  overrides.clearLevel()
  t.equal(overrides.forcedLevel, undefined)
  overrides.pin('search', false)
  overrides.clear()
  t.same(overrides.snapshot().pins, {})
})

t.test('bad overrides throw SPILLWAY_DEGRADATION_OVERRIDE and change nothing', async (t) => {
  const overrides = new Overrides(features, 3)
  t.throws(() => overrides.forceLevel(4), { code: 'SPILLWAY_DEGRADATION_OVERRIDE', message: /level must be an integer in \[0, 3\], got 4/ })
  t.throws(() => overrides.forceLevel(1, { ttlMs: 0 }), { code: 'SPILLWAY_DEGRADATION_OVERRIDE', message: /ttlMs .*got 0/ })
  t.throws(() => overrides.pin('nope', false), { message: /feature "nope" was not declared/ })
  t.throws(() => overrides.pin('search', 'off' as never), { message: /got "off"/ })
  t.equal(overrides.forcedLevel, undefined)
  t.equal(overrides.pinOf(1), -1)
})

t.test('adopting a remote state: newer wins, older and malformed are ignored', async (t) => {
  const wall = manualClock(5000)
  const overrides = new Overrides(features, 3, wall.now)
  const sources: OverrideChangeSource[] = []
  overrides.onChange((_state, source) => sources.push(source))
  t.equal(overrides.adopt({ level: { level: 3, expiresAt: null }, pins: { search: { on: false, expiresAt: 9000 }, ghost: { on: true } }, updatedAt: 4000 }), true)
  t.equal(overrides.forcedLevel, 3)
  t.equal(overrides.pinOf(1), 0)
  t.equal(overrides.adopt({ level: null, pins: {}, updatedAt: 3999 }), false, 'older')
  t.equal(overrides.adopt('garbage'), false)
  t.equal(overrides.adopt({ level: null, pins: {} }), false, 'no version')
  t.equal(overrides.adopt({ level: { level: 99 }, pins: null, updatedAt: 4001 }), true)
  t.equal(overrides.forcedLevel, undefined, 'an out-of-range level is dropped')
  // A decision taken here after adopting is newer than what was adopted even if this clock is behind.
  wall.set(100)
  overrides.forceLevel(1)
  t.equal(overrides.snapshot().updatedAt, 4002)
  t.same(sources, ['remote', 'remote', 'local'])
  t.equal(overrides.adopt({ level: null, pins: { search: { on: true, expiresAt: 50 } }, updatedAt: 5000 }), true)
  t.equal(overrides.pinOf(1), -1, 'an adopted pin that already expired is dropped at once')
})

t.test('a listener can unsubscribe', async (t) => {
  const overrides = new Overrides(features, 3)
  let calls = 0
  const off = overrides.onChange(() => calls++)
  overrides.forceLevel(1)
  off()
  off()
  overrides.forceLevel(2)
  t.equal(calls, 1)
})
