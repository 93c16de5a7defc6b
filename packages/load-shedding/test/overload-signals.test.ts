import t from 'tap'
import type { LoopReading } from '../src/delay-detector.js'
import { OverloadSignals, type OverloadSignalsOptions } from '../src/overload-signals.js'

const OPTIONS: OverloadSignalsOptions = { targetDelayMs: 25, minUtilization: 0.8, maxUtilization: 0.95, queueHeadroom: 0.5, signals: {} }
const loop = (delayP50Ms: number, utilization: number): LoopReading =>
  ({ delayP50Ms, delayP99Ms: delayP50Ms, delayMaxMs: delayP50Ms, utilization, sampledAt: 0 })
const QUIET_QUEUE = { expired: 0, dispatched: 0, peakLength: 0, length: 0 }

t.test('without a run queue the event loop judges the CPU', async (t) => {
  const s = new OverloadSignals(OPTIONS)
  const v = s.assess(loop(100, 1), undefined, 0, 0, 10)
  t.equal(v.overloaded, true)
  t.equal(v.severity, 4)
  t.equal(v.cpuSeverity, 4)
  t.equal(v.otherOverloaded, false)
  t.equal(v.ceiling, undefined)
})

t.test('with a run queue the loop delay is not acted on; its expiries are, with a ceiling', async (t) => {
  const s = new OverloadSignals(OPTIONS)
  t.equal(s.assess(loop(100, 1), QUIET_QUEUE, 500, 0, 10).overloaded, false, 'a long delay with a queue served in time')
  const v = s.assess(loop(100, 1), { expired: 3, dispatched: 50, peakLength: 9, length: 2 }, 500, 0, 10)
  t.equal(v.overloaded, true)
  t.equal(v.cpuSeverity, 1)
  t.equal(v.ceiling, 750)
  t.equal(v.draining, false, 'never draining with a queue')
})

t.test('other signals add to the CPU\'s: the worst severity wins and they count as other', async (t) => {
  const s = new OverloadSignals({ ...OPTIONS, signals: { pool: () => 2.5 } })
  s.limit.refused()
  s.queueing.refused()
  const v = s.assess(loop(50, 1), undefined, 0, 30, 10)
  t.equal(v.overloaded, true)
  t.equal(v.cpuSeverity, 2)
  t.equal(v.severity, 3, 'peak 30 over a limit of 10')
  t.equal(v.otherOverloaded, true)
})

t.test('draining: only while the loop alone says overload and its median fell by a quarter', async (t) => {
  const s = new OverloadSignals(OPTIONS)
  s.assess(loop(200, 1), undefined, 0, 0, 10)
  t.equal(s.assess(loop(100, 1), undefined, 0, 0, 10).draining, true)
  s.limit.refused()
  t.equal(s.assess(loop(50, 1), undefined, 0, 100, 10).draining, false, 'the limiter also says overload: not just a draining backlog')
})
