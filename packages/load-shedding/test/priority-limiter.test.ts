import t from 'tap'
import { AimdLimit } from '../src/aimd-limit.js'
import { PriorityLimiter as LoadShedder, type PriorityLimiterOptions as LoadShedderOptions } from '../src/priority-limiter.js'
import type { LoopReading } from '../src/delay-detector.js'
import { ADMIT, SHED_LIMIT, SHED_QUEUE, SHED_THRESHOLD, SHED_BACKSTOP } from '../src/decision.js'
import { shedderOptions } from './support/shedder-options.js'

const CALM: LoopReading = { delayP50Ms: 1, delayP99Ms: 2, delayMaxMs: 2, utilization: 0.3, sampledAt: 0 }
const SATURATED: LoopReading = { delayP50Ms: 100, delayP99Ms: 120, delayMaxMs: 150, utilization: 1, sampledAt: 0 }

function shedder(overrides: Partial<LoadShedderOptions> = {}): LoadShedder {
  return new LoadShedder(shedderOptions(overrides))
}

/** One interval of traffic: `perCohort` requests of every priority and cohort, each released at once. */
function traffic(s: LoadShedder, perCohort = 5): number[] {
  const shed = [0, 0, 0, 0]
  for (let rank = 0; rank < 4; rank++) {
    for (let cohort = 0; cohort < s.cohorts; cohort++) {
      for (let i = 0; i < perCohort; i++) {
        if (s.decide(rank, cohort, 0) === ADMIT) s.release(5, false)
        else shed[rank]!++
      }
    }
  }
  return shed
}

t.test('CPU overload (median loop delay above target, loop busy) sheds low, then normal, never critical', async (t) => {
  const s = shedder()
  let now = 0
  const order: string[] = []
  for (let step = 0; step < 40; step++) {
    const shed = traffic(s)
    if (shed[3]! > 0 && !order.includes('low')) order.push('low')
    if (shed[2]! > 0 && !order.includes('normal')) order.push('normal')
    if (shed[1]! > 0 && !order.includes('high')) order.push('high')
    t.equal(shed[0], 0, 'critical is never shed by the threshold')
    now += 100
    s.update(now, 100, SATURATED)
  }
  t.same(order, ['low', 'normal', 'high'])
  t.equal(s.state.threshold.admittedLevels, 4, 'down to critical only')
  t.equal(s.pressure, 1)
  t.ok(s.state.shed.low.threshold > s.state.shed.normal.threshold)
})

t.test('a delay without a busy loop (GC pause, stolen CPU) is not acted on', async (t) => {
  const s = shedder()
  traffic(s)
  s.update(100, 100, { ...SATURATED, utilization: 0.5 })
  t.equal(s.overloaded, false)
  t.equal(s.pressure, 0)
})

t.test('a saturated loop counts as overload even with a short delay, once it lasts', async (t) => {
  const s = shedder()
  traffic(s)
  s.update(100, 100, { ...CALM, utilization: 1 })
  t.equal(s.overloaded, false, 'one busy interval is a burst (smoothed: 0.5)')
  let now = 100
  for (let i = 0; i < 4; i++) { traffic(s); now += 100; s.update(now, 100, { ...CALM, utilization: 1 }) }
  t.equal(s.overloaded, true, 'smoothed past maxUtilization (0.97)')
  t.ok(s.state.signals.eventLoop.smoothedUtilization >= 0.95)
})

t.test('IO overload: the limiter refuses by priority share, then the threshold takes over', async (t) => {
  const s = shedder({ limit: new AimdLimit({ initialLimit: 10, minLimit: 1 }) })
  // Ten requests in flight that do not finish (a slow pool).
  for (let i = 0; i < 8; i++) t.equal(s.decide(3, 0, 0), ADMIT)
  t.equal(s.decide(3, 1, 0), SHED_LIMIT, 'low full at 80% of the limit')
  t.equal(s.decide(2, 1, 0), ADMIT)
  t.equal(s.decide(2, 1, 0), ADMIT)
  t.equal(s.decide(2, 1, 0), SHED_LIMIT, 'normal full at the limit')
  t.equal(s.decide(1, 1, 0), ADMIT, 'high has a reserve')
  t.equal(s.decide(0, 0, 0), ADMIT, 'critical has the backstop')
  s.update(100, 100, CALM)
  t.equal(s.overloaded, true, 'limit refusals are an overload signal')
  t.ok(s.state.threshold.admittedLevels < 16, 'threshold tightened')
  t.equal(s.state.shed.low.limit, 1)
})

t.test('critical is refused only by the backstop', async (t) => {
  const s = shedder({ limit: new AimdLimit({ initialLimit: 2, minLimit: 1 }) })
  for (let i = 0; i < 4; i++) t.equal(s.decide(0, 0, 0), ADMIT)
  t.equal(s.decide(0, 0, 0), SHED_BACKSTOP)
  t.equal(s.state.shed.critical.backstop, 1)
})

t.test('a request read late in a long loop turn is shed by priority', async (t) => {
  const s = shedder()
  t.equal(s.decide(3, 0, 30), SHED_QUEUE, 'low after 25 ms')
  t.equal(s.decide(2, 0, 30), ADMIT)
  t.equal(s.decide(2, 0, 60), SHED_QUEUE, 'normal after 50 ms')
  t.equal(s.decide(1, 0, 60), ADMIT)
  t.equal(s.decide(0, 0, 10_000), ADMIT, 'critical never')
  s.update(100, 100, CALM)
  t.equal(s.overloaded, true)
})

t.test('shedding ends within a few intervals once the overload stops', async (t) => {
  const s = shedder()
  let now = 0
  for (let step = 0; step < 10; step++) { traffic(s, 10); now += 100; s.update(now, 100, SATURATED) }
  t.ok(s.pressure > 0)
  let steps = 0
  while (s.pressure > 0 && steps < 100) { traffic(s, 3); now += 100; s.update(now, 100, CALM); steps++ }
  t.ok(steps <= 5, `ended after ${steps} intervals`)
})

t.test('user signals: ≥ 1 is overload; a throwing or non-numeric signal reads as 0', async (t) => {
  let heap = 0.5
  const s = shedder({ signals: { heap: () => heap, broken: () => { throw new Error('x') }, nan: () => Number.NaN } })
  traffic(s)
  s.update(100, 100, CALM)
  t.equal(s.overloaded, false)
  t.same(s.state.signals.user, { heap: 0.5, broken: 0, nan: 0 })
  heap = 2
  traffic(s)
  s.update(200, 100, CALM)
  t.equal(s.overloaded, true)
  t.equal(s.state.threshold.admittedLevels < 16, true)
})

t.test('shadow mode: decides and counts, and every request holds a slot', async (t) => {
  const s = shedder({ mode: 'shadow', limit: new AimdLimit({ initialLimit: 1, minLimit: 1 }) })
  t.equal(s.decide(2, 0, 0), ADMIT)
  t.equal(s.decide(2, 0, 0), SHED_LIMIT, 'would have been shed')
  t.equal(s.limiter.inFlight, 2, 'but holds a slot: the caller lets it through')
  t.equal(s.state.shed.normal.limit, 1)
  t.equal(s.state.mode, 'shadow')
})

t.test('threshold decision comes before the limiter', async (t) => {
  const s = shedder()
  for (let step = 0; step < 40; step++) { traffic(s); s.update(step * 100, 100, SATURATED) }
  t.equal(s.decide(3, 3, 0), SHED_THRESHOLD)
})

t.test('a backlog draining fast holds the threshold: no second cut for the same overload', async (t) => {
  const s = shedder()
  traffic(s)
  s.update(100, 100, SATURATED)
  t.equal(s.state.threshold.admittedLevels, 16, 'one saturated step (one stall reads the same) holds')
  traffic(s)
  s.update(200, 100, SATURATED)
  const afterCut = s.state.threshold.admittedLevels
  t.ok(afterCut < 16, 'the second in a row cuts')
  traffic(s)
  s.update(300, 100, { ...SATURATED, delayP50Ms: 60 })
  t.equal(s.draining, true, 'median delay fell from 100 to 60 ms')
  t.equal(s.state.threshold.admittedLevels, afterCut, 'held')
  traffic(s)
  s.update(400, 100, { ...SATURATED, delayP50Ms: 58 })
  t.equal(s.draining, false, 'a standing queue again')
  t.ok(s.state.threshold.admittedLevels < afterCut, 'cut')
})

t.test('after a CPU overload, a calm loop relaxes by its measured headroom (up to +25% a step)', async (t) => {
  const slow = shedder()
  const fast = shedder()
  for (const s of [slow, fast]) {
    for (let step = 0; step < 6; step++) { traffic(s); s.update(step * 100, 100, SATURATED) }
  }
  // Same cut; now one loop is calm and half idle, the other calm but busy.
  traffic(slow, 5); slow.update(700, 100, { ...CALM, utilization: 0.95 })
  traffic(fast, 5); fast.update(700, 100, { ...CALM, utilization: 0.2 })
  t.ok(fast.state.threshold.admittedLevels > slow.state.threshold.admittedLevels,
    `${fast.state.threshold.admittedLevels} > ${slow.state.threshold.admittedLevels}`)
})
