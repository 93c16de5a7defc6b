import t from 'tap'
import { AdmissionLevel, type AdmissionLevelOptions } from '../src/admission-level.js'

/** The settings the plugin's defaults give a threshold of `levels` levels (one priority of them all). */
function settings(options: Partial<AdmissionLevelOptions> & Pick<AdmissionLevelOptions, 'levels' | 'floor'>): AdmissionLevelOptions {
  return { rankSize: options.levels, tightenRatio: 0.1, maxTightenRatio: 0.5, relaxRatio: 0.05, capacityShare: 0.9, holdUpdates: 1, ...options }
}

/** 4 levels of 100 arrivals per 100 ms each (1000/s per level), floor 1. */
function loaded(options: Partial<AdmissionLevelOptions> = {}): AdmissionLevel {
  const level = new AdmissionLevel(settings({ levels: 4, floor: 1, holdUpdates: 0, ...options }))
  return level
}
function arrive(level: AdmissionLevel, perLevel: number[]): void {
  perLevel.forEach((count, i) => { level.arrivals[i] = count })
}

t.test('admits every level while calm', async (t) => {
  const level = loaded()
  arrive(level, [100, 100, 100, 100])
  t.equal(level.update(100, false, 0), 4)
  t.equal(level.shedShare, 0)
})

t.test('overload cuts the least important levels first, by at least tightenRatio', async (t) => {
  const level = loaded({ tightenRatio: 0.3 })
  arrive(level, [100, 100, 100, 100])
  // rates are EMA ½: 500/s per level → admitted 2000/s; target 1400/s → 2 levels (1000/s) fit
  t.equal(level.update(100, true, 1), 2)
  t.equal(level.capacityPerSecond, 2000, 'remembers what it could not take')
  t.equal(level.shedShare, 2 / 3)
})

t.test('severity scales the cut up to maxTightenRatio; never below the floor', async (t) => {
  const level = loaded({ tightenRatio: 0.1, maxTightenRatio: 0.9 })
  arrive(level, [100, 100, 100, 100])
  t.equal(level.update(100, true, 100), 1, 'cut 90% → only the floor')
  arrive(level, [100, 100, 100, 100])
  t.equal(level.update(100, true, 100), 1, 'critical (below the floor) is never cut')
})

t.test('holds after a cut so one overload is not counted twice', async (t) => {
  const level = new AdmissionLevel(settings({ levels: 8, floor: 0, tightenRatio: 0.2, holdUpdates: 1 }))
  arrive(level, [10, 10, 10, 10, 10, 10, 10, 10])
  const first = level.update(100, true, 1)
  arrive(level, [10, 10, 10, 10, 10, 10, 10, 10])
  t.equal(level.update(100, true, 1), first, 'held')
  arrive(level, [10, 10, 10, 10, 10, 10, 10, 10])
  t.ok(level.update(100, true, 1) < first, 'cuts again after the hold')
})

t.test('relaxes slowly, but straight back to capacityShare of the remembered capacity', async (t) => {
  const level = loaded({ tightenRatio: 0.5, relaxRatio: 0.05, capacityShare: 0.9 })
  arrive(level, [100, 100, 100, 100])
  level.update(100, true, 1) // capacity 2000/s, admitted 2 → wait, target 1000/s → levels [0,2)
  t.equal(level.admitted, 2)
  // The overload stops: arrivals fall to 20 per level per 100 ms.
  arrive(level, [20, 20, 20, 20])
  // rates: ½·500 + ½·200 = 350/s per level; target max(700 × 1.05, 0.9 × 2000) = 1800 → all 4 (1400/s)
  t.equal(level.update(100, false, 0), 4, 'shedding ends in one update')
})

t.test('without remembered capacity, relaxing adds relaxRatio of the admitted traffic (at least one level)', async (t) => {
  const level = new AdmissionLevel(settings({ levels: 10, floor: 0, tightenRatio: 0.5, relaxRatio: 0.05, capacityShare: 0, holdUpdates: 0 }))
  arrive(level, Array(10).fill(10))
  level.update(100, true, 1)
  const cut = level.admitted
  arrive(level, Array(10).fill(10))
  t.equal(level.update(100, false, 0), cut + 1)
})

t.test('a cut never re-admits levels even when the admitted levels saw no traffic', async (t) => {
  const level = loaded({ tightenRatio: 0.5 })
  arrive(level, [0, 0, 0, 100])
  level.update(100, true, 1)
  arrive(level, [0, 0, 0, 100])
  t.ok(level.update(100, true, 1) <= 3)
})

t.test('reset and bad options', async (t) => {
  const level = loaded()
  arrive(level, [100, 100, 100, 100])
  level.update(100, true, 5)
  level.reset()
  t.equal(level.admitted, 4)
  t.equal(level.capacityPerSecond, 0)
  t.throws(() => new AdmissionLevel(settings({ levels: 4, floor: 5 })), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /floor/ })
  t.throws(() => new AdmissionLevel(settings({ levels: 4, floor: 1, tightenRatio: 0.5, maxTightenRatio: 0.2 })), { message: /maxTightenRatio/ })
})

t.test('rankSize: one overloaded update cuts into one priority at most', async (t) => {
  // 3 priorities of 2 cohorts; the least important (levels 4–5) carries little traffic, so a 50%
  // cut sized on the rates would reach into the middle priority in the same update.
  const level = new AdmissionLevel(settings({ levels: 6, floor: 2, rankSize: 2, tightenRatio: 0.5, holdUpdates: 0 }))
  arrive(level, [100, 100, 100, 100, 10, 10])
  t.equal(level.update(100, true, 1), 4, 'first update: the last priority shed in full, the cut stops at its boundary')
  arrive(level, [100, 100, 100, 100, 10, 10])
  t.equal(level.update(100, true, 1), 2, 'next update: the middle priority is cut (a 50% cut of 3 000/s: all of it)')
  const unbounded = new AdmissionLevel(settings({ levels: 6, floor: 2, tightenRatio: 0.5, holdUpdates: 0 }))
  arrive(unbounded, [100, 100, 100, 100, 10, 10])
  t.equal(unbounded.update(100, true, 1), 2, 'control: without rankSize the first cut already takes the middle priority')
})

t.test('rankSize is checked', async (t) => {
  t.throws(() => new AdmissionLevel(settings({ levels: 6, floor: 2, rankSize: 0 })), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /rankSize/ })
  t.throws(() => new AdmissionLevel(settings({ levels: 6, floor: 2, rankSize: 7 })), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /rankSize/ })
})
