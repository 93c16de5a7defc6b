import t from 'tap'
import { EventLoopDelayDetector, type LoopReading } from '../src/delay-detector.js'
import { LimitDetector } from '../src/limit-detector.js'
import { QueueingDetector } from '../src/queueing-detector.js'
import { RunQueueDetector } from '../src/run-queue-detector.js'
import { UserSignalsDetector } from '../src/user-signals-detector.js'
import { UtilizationDetector } from '../src/utilization-detector.js'

const loop = (delayP50Ms: number, utilization: number): LoopReading =>
  ({ delayP50Ms, delayP99Ms: delayP50Ms, delayMaxMs: delayP50Ms, utilization, sampledAt: 0 })

t.test('event-loop delay: the median over its target while the loop is busy; severity is the ratio', async (t) => {
  const d = new EventLoopDelayDetector(25, 0.8)
  d.sample(loop(50, 0.9))
  t.equal(d.overloaded, true)
  t.equal(d.severity, 2)
  d.sample(loop(50, 0.5))
  t.equal(d.overloaded, false, 'a delay without a busy loop (a GC pause, stolen CPU) is not overload')
  t.equal(d.load, 2, 'the load is still reported')
  d.sample(loop(25, 1))
  t.equal(d.overloaded, false, 'at the target is not past it')
})

t.test('event-loop delay: falling when the median dropped by a quarter or more since the last interval', async (t) => {
  const d = new EventLoopDelayDetector(25, 0.8)
  d.sample(loop(100, 1))
  t.equal(d.falling, false, 'nothing to compare with yet')
  d.sample(loop(80, 1))
  t.equal(d.falling, false, 'down 20%')
  d.sample(loop(50, 1))
  t.equal(d.falling, true, 'down 37.5%')
})

t.test('utilization: smoothed over two intervals, overload at maxUtilization', async (t) => {
  const d = new UtilizationDetector(0.95)
  d.sample(1)
  t.equal(d.smoothed, 0.5)
  t.equal(d.overloaded, false, 'one busy interval is a burst')
  d.sample(1)
  d.sample(1)
  d.sample(1)
  d.sample(1)
  t.ok(d.smoothed >= 0.95)
  t.equal(d.overloaded, true)
  t.equal(d.severity, 1)
})

t.test('run queue: expiries are the overload; the served rate while saturated is the capacity', async (t) => {
  const d = new RunQueueDetector(0.5)
  d.sample({ expired: 0, dispatched: 100, peakLength: 5, length: 3 }, 1000)
  t.equal(d.overloaded, false, 'waiting requests served in time: at capacity, not past it')
  t.equal(d.ceiling, undefined)
  d.sample({ expired: 4, dispatched: 100, peakLength: 20, length: 10 }, 800)
  t.equal(d.overloaded, true)
  t.equal(d.severity, 1)
  // Capacity: 0.7 × 1000 + 0.3 × 800 = 940; ceiling = max(800, 940) × 1.5.
  t.equal(d.ceiling, 940 * 1.5)
  d.sample({ expired: 0, dispatched: 0, peakLength: 0, length: 0 }, 10)
  t.equal(d.overloaded, false)
  d.sample({ expired: 1, dispatched: 0, peakLength: 1, length: 0 }, 10)
  t.equal(d.ceiling, (0.7 * 940 + 0.3 * 10) * 1.5, 'an idle interval with an expiry still folds into the capacity')
})

t.test('limit: refusals in the interval are the overload, severity the peak in flight over the limit; reset each step', async (t) => {
  const d = new LimitDetector()
  d.sample(30, 20)
  t.equal(d.overloaded, false, 'a peak over the limit without a refusal says nothing')
  t.equal(d.load, 1.5)
  d.refused()
  d.refused()
  d.sample(30, 20)
  t.equal(d.overloaded, true)
  t.equal(d.severity, 1.5)
  d.sample(30, 20)
  t.equal(d.overloaded, false, 'counted per interval')
  d.refused()
  d.sample(3, 0)
  t.equal(d.severity, 3, 'a limit of 0 reads as 1')
})

t.test('queueing: any socket-wait refusal in the interval is overload of severity 1', async (t) => {
  const d = new QueueingDetector()
  d.sample()
  t.equal(d.overloaded, false)
  d.refused()
  d.sample()
  t.equal(d.overloaded, true)
  t.equal(d.severity, 1)
  d.sample()
  t.equal(d.overloaded, false)
})

t.test('user signals: any at or above 1; the largest is the severity; a throwing or odd one reads 0', async (t) => {
  let heap = 0.5
  const d = new UserSignalsDetector({
    heap: () => heap,
    pool: () => 1.5,
    broken: () => { throw new Error('boom') },
    odd: () => Number.NaN
  })
  d.sample()
  t.equal(d.overloaded, true)
  t.equal(d.severity, 1.5)
  t.same(d.values, { heap: 0.5, pool: 1.5, broken: 0, odd: 0 })
  heap = 3
  d.sample()
  t.equal(d.severity, 3)
  const calm = new UserSignalsDetector({ heap: () => 0.99 })
  calm.sample()
  t.equal(calm.overloaded, false)
  t.equal(calm.severity, 0)
})
