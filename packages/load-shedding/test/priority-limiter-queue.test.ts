import t from 'tap'
import { AimdLimit } from '../src/aimd-limit.js'
import { PriorityLimiter as LoadShedder, type PriorityLimiterOptions as LoadShedderOptions } from '../src/priority-limiter.js'
import type { LoopReading } from '../src/delay-detector.js'
import type { RunQueueReading } from '../src/run-queue.js'
import { ADMIT, SHED_QUEUE, SHED_THRESHOLD } from '../src/decision.js'
import { shedderOptions } from './support/shedder-options.js'

const CALM: LoopReading = { delayP50Ms: 1, delayP99Ms: 2, delayMaxMs: 2, utilization: 0.3, sampledAt: 0 }
const SATURATED: LoopReading = { delayP50Ms: 100, delayP99Ms: 120, delayMaxMs: 150, utilization: 1, sampledAt: 0 }
const EMPTY_QUEUE: RunQueueReading = { expired: 0, dispatched: 0, peakLength: 0, length: 0 }

function shedder(overrides: Partial<LoadShedderOptions> = {}): LoadShedder {
  return new LoadShedder(shedderOptions({ limit: new AimdLimit({ initialLimit: 1000, minLimit: 1 }), ...overrides }))
}

const PER_LEVEL = 5
const INTERVAL_MS = 100
/** Arrivals per level per second once the histogram has settled: 5 per 100 ms interval. */
const LEVEL_RATE = (PER_LEVEL * 1000) / INTERVAL_MS

/**
 * One interval as the run queue sees it: `PER_LEVEL` requests of every priority and cohort pass
 * the screen (or are shed by the threshold), and only the first `served` of those that passed are
 * taken from the queue (`acquire`) and finish; the others waited past their `maxQueueMs`.
 * Answers how many were served and how many passed the screen.
 */
function queuedInterval(s: LoadShedder, served: number): { served: number, screened: number } {
  let acquired = 0
  let screened = 0
  for (let rank = 0; rank < 4; rank++) {
    for (let cohort = 0; cohort < s.cohorts; cohort++) {
      for (let i = 0; i < PER_LEVEL; i++) {
        if (s.screen(rank, cohort, 0) !== ADMIT) continue
        screened++
        if (acquired < served && s.acquire(rank) === ADMIT) {
          acquired++
          s.release(5, false)
        }
      }
    }
  }
  return { served: acquired, screened }
}

/** Calm intervals with an empty queue until the arrival histogram has settled at `LEVEL_RATE` per level. */
function settle(s: LoadShedder, clock: { now: number }): void {
  for (let i = 0; i < 20; i++) {
    const { screened } = queuedInterval(s, Number.POSITIVE_INFINITY)
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, CALM, { ...EMPTY_QUEUE, dispatched: screened })
  }
}

t.test('queue mode: a saturated event loop is not overload while the queue serves everything in time', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  for (let i = 0; i < 10; i++) {
    queuedInterval(s, Number.POSITIVE_INFINITY)
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, SATURATED, { expired: 0, dispatched: 40, peakLength: 12, length: 3 })
    t.equal(s.overloaded, false, `step ${i}: no expiry, no overload`)
  }
  t.equal(s.state.threshold.admittedLevels, 16, 'nothing shed')
  t.equal(s.pressure, 0)
  t.equal(s.draining, false)
  t.same(s.state.signals.queue, { expired: 0, dispatched: 40, peakLength: 12, length: 3 }, 'the reading is reported')

  // The same readings without the queue: the delay and utilization triggers act.
  const without = shedder()
  for (let step = 1; step <= 2; step++) {
    queuedInterval(without, Number.POSITIVE_INFINITY)
    without.update(step * INTERVAL_MS, INTERVAL_MS, SATURATED)
  }
  t.equal(without.overloaded, true, 'control: the saturated reading is overload without a queue')
  t.ok(without.state.threshold.admittedLevels < 16, 'cut at the second saturated step in a row')
  t.same(without.state.signals.queue, EMPTY_QUEUE, 'no queue: all zero')
})

t.test('queue expiries: the threshold comes down to about the served rate × (1 + headroom), lowest priorities first', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  settle(s, clock)
  t.equal(s.state.threshold.admittedLevels, 16)
  const arrival = s.state.rates.arrivalPerSecond
  t.ok(Math.abs(arrival - 16 * LEVEL_RATE) < 1, `arrivals settled at ${arrival}/s`)

  // 80 requests pass the screen, 32 are served (320/s), 48 expire in the queue.
  const { served, screened } = queuedInterval(s, 32)
  t.equal(served, 32)
  t.equal(screened, 80)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 48, dispatched: 32, peakLength: 60, length: 0 })
  t.equal(s.overloaded, true, 'expiries are overload')
  t.equal(s.state.threshold.admittedLevels, 16, 'one step of them (one stall makes one) moves nothing yet')

  // The same interval again: a standing overload.
  queuedInterval(s, 32)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 48, dispatched: 32, peakLength: 60, length: 0 })
  t.equal(s.state.threshold.admittedLevels, 12, 'one priority per update: low shed in full, the cut stops at normal')
  t.same(s.state.threshold.admitsDownTo, { priority: 'normal', cohort: 3 })

  // The same interval again: now normal is cut, to the ceiling.
  queuedInterval(s, 32)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 48, dispatched: 32, peakLength: 60, length: 0 })
  const ceiling = 320 * 1.5
  const state = s.state
  t.equal(state.overloaded, true, 'expiries are overload')
  t.ok(state.rates.admittedPerSecond <= ceiling, `admitted ${state.rates.admittedPerSecond}/s ≤ ceiling ${ceiling}/s`)
  t.ok(state.rates.admittedPerSecond > ceiling - LEVEL_RATE, `admitted ${state.rates.admittedPerSecond}/s within one level of the ceiling: cut to it, not below`)
  t.equal(state.threshold.admittedLevels, 9, '480/s of 50/s levels: critical, high and one cohort of normal')
  t.same(state.threshold.admitsDownTo, { priority: 'normal', cohort: 0 })
  t.equal(state.pressure, (16 - 9) / 12)

  // The next interval's traffic: low is shed whole, normal in part, high and critical not at all.
  const shedByRank = [0, 0, 0, 0]
  for (let rank = 0; rank < 4; rank++) {
    for (let cohort = 0; cohort < 4; cohort++) {
      if (s.screen(rank, cohort, 0) === SHED_THRESHOLD) shedByRank[rank]!++
    }
  }
  t.same(shedByRank, [0, 0, 3, 4])
})

t.test('the ceiling uses the smoothed served capacity: one poor interval does not halve it', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  settle(s, clock)
  for (let step = 0; step < 2; step++) {
    queuedInterval(s, 42) // 420/s served: ceiling 630/s
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, CALM, { expired: 38, dispatched: 42, peakLength: 50, length: 0 })
  }
  t.equal(s.state.threshold.admittedLevels, 12, '630/s: critical, high, normal; low shed')
  t.same(s.state.threshold.admitsDownTo, { priority: 'normal', cohort: 3 })

  queuedInterval(s, 20) // 200/s served; capacity 0.7 × 420 + 0.3 × 200 = 354/s: ceiling 531/s (not 300/s)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 40, dispatched: 20, peakLength: 50, length: 0 })
  t.equal(s.state.threshold.admittedLevels, 10, '531/s: ten levels of 50/s')
  t.ok(s.state.rates.admittedPerSecond <= 531)
})

t.test('queue expiries with the admitted rate already below the ceiling cut nothing', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  settle(s, clock)
  // 70 of 80 served (700/s): ceiling 1050/s, above the 800/s admitted.
  queuedInterval(s, 70)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 10, dispatched: 70, peakLength: 20, length: 0 })
  t.equal(s.overloaded, true, 'still reported as overload')
  t.equal(s.state.threshold.admittedLevels, 16, 'but nothing cut')
  t.equal(s.pressure, 0)
  t.same(s.state.signals.queue, { expired: 10, dispatched: 70, peakLength: 20, length: 0 })
})

t.test('another signal\'s overload with queue expiries: a blind cut, not the ceiling', async (t) => {
  let heap = 0
  const s = shedder({ signals: { heap: () => heap } })
  const clock = { now: 0 }
  settle(s, clock)
  // Served 70 of 80: the queue's ceiling (1050/s) would cut nothing, the heap signal cuts.
  heap = 2
  queuedInterval(s, 70)
  clock.now += INTERVAL_MS
  s.update(clock.now, INTERVAL_MS, CALM, { expired: 10, dispatched: 70, peakLength: 20, length: 0 })
  t.equal(s.overloaded, true)
  t.ok(s.state.threshold.admittedLevels < 16, `cut to ${s.state.threshold.admittedLevels} levels`)
})

t.test('once the queue stops expiring, the threshold relaxes again', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  settle(s, clock)
  for (let step = 0; step < 2; step++) {
    queuedInterval(s, 30)
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, CALM, { expired: 50, dispatched: 30, peakLength: 60, length: 0 })
  }
  const cut = s.state.threshold.admittedLevels
  t.ok(cut < 16)
  let steps = 0
  while (s.state.threshold.admittedLevels < 16 && steps < 50) {
    const { screened } = queuedInterval(s, Number.POSITIVE_INFINITY)
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, SATURATED, { expired: 0, dispatched: screened, peakLength: 5, length: 0 })
    t.equal(s.overloaded, false)
    steps++
  }
  t.equal(s.state.threshold.admittedLevels, 16, `all admitted again after ${steps} calm steps`)
})

t.test('countShed counts a queue shed per priority', async (t) => {
  const s = shedder()
  s.countShed(3, SHED_QUEUE)
  s.countShed(3, SHED_QUEUE)
  s.countShed(1, SHED_QUEUE)
  t.equal(s.state.shed.low.queue, 2)
  t.equal(s.state.shed.high.queue, 1)
  t.equal(s.state.shed.normal.queue, 0)
  t.equal(s.state.admitted.low, 0, 'an expired request was never admitted')
})

t.test('screen then acquire is decide: the threshold in screen, the limiter in acquire', async (t) => {
  const s = shedder({ limit: new AimdLimit({ initialLimit: 2, minLimit: 1 }) })
  t.equal(s.screen(3, 0, 0), ADMIT, 'screen takes no slot')
  t.equal(s.screen(3, 0, 0), ADMIT)
  t.equal(s.screen(3, 0, 0), ADMIT)
  t.equal(s.limiter.inFlight, 0)
  t.equal(s.acquire(2), ADMIT)
  t.equal(s.acquire(2), ADMIT)
  t.not(s.acquire(2), ADMIT, 'the limiter refuses at acquire')
  t.equal(s.limiter.inFlight, 2)
  t.equal(s.state.admitted.normal, 2)
  t.equal(s.state.shed.normal.limit, 1)
})

t.test('one stall of the loop is not a standing overload: one overloaded step between calm ones moves nothing', async (t) => {
  const s = shedder()
  const clock = { now: 0 }
  settle(s, clock)
  // The interval of the stall: few served, its waiters expired, the burst read after it.
  queuedInterval(s, 5)
  clock.now += 250
  s.update(clock.now, 250, { ...CALM, delayMaxMs: 150 }, { expired: 40, dispatched: 5, peakLength: 45, length: 0 })
  t.equal(s.overloaded, true, 'reported')
  for (let i = 0; i < 3; i++) {
    const { screened } = queuedInterval(s, Number.POSITIVE_INFINITY)
    clock.now += INTERVAL_MS
    s.update(clock.now, INTERVAL_MS, CALM, { ...EMPTY_QUEUE, dispatched: screened })
  }
  t.equal(s.state.threshold.admittedLevels, 16, 'nothing shed by the threshold')
  t.equal(s.pressure, 0)

  // Without the run queue, a stall reads as a saturated interval: the same.
  const without = shedder()
  queuedInterval(without, Number.POSITIVE_INFINITY)
  without.update(100, 100, CALM)
  queuedInterval(without, Number.POSITIVE_INFINITY)
  without.update(250, 150, { delayP50Ms: 150, delayP99Ms: 150, delayMaxMs: 150, utilization: 1, sampledAt: 0 })
  t.equal(without.overloaded, true)
  queuedInterval(without, Number.POSITIVE_INFINITY)
  without.update(350, 100, CALM)
  t.equal(without.state.threshold.admittedLevels, 16, 'no queue: nothing shed either')
})
