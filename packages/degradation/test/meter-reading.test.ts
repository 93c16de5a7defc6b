import t from 'tap'
import { ServerMeter } from '@spillway/latency-window/core'
import { fakeEventLoop as fakeLoop } from '../../latency-window/test/helpers/fake-event-loop.js'
import { IDLE_READING, meterReading, readMeter } from '../src/meter-reading.js'
import { manualClock } from './helpers/clock.js'

t.test('no meter yet: the idle reading, which holds the level', async (t) => {
  t.equal(readMeter(undefined, { latencyWindow: undefined, percentile: 0.95 }), IDLE_READING)
  t.same(IDLE_READING, { latencyMs: 0, samples: 0, eventLoopDelayMs: 0, utilization: 0, pressure: undefined })
})

t.test('the meter\'s figures, over the window of the shape asked for; pressure only once published', async (t) => {
  const clock = manualClock(1000)
  // Its event-loop sampler is never started here: delay and utilization read 0.
  const meter = new ServerMeter({ now: clock.now })
  const shape = { windowMs: 1000, slices: 4 }
  t.same(readMeter(meter, { latencyWindow: shape, percentile: 0.5 }), {
    latencyMs: 0, samples: 0, inFlightAgeMs: 0, inFlightSamples: 0, eventLoopDelayMs: 0, utilization: 0, pressure: undefined
  })
  for (const ms of [10, 20, 30, 40]) meter.recordLatency(ms, clock.now())
  const reading = readMeter(meter, { latencyWindow: shape, percentile: 0.5 })
  t.equal(reading.samples, 4)
  t.ok(Math.abs(reading.latencyMs - 20) <= 1, `median ${reading.latencyMs}`)
  clock.advance(2000)
  t.equal(readMeter(meter, { latencyWindow: shape, percentile: 0.5 }).samples, 0, 'the 1 s window has emptied')
  t.equal(readMeter(meter, { latencyWindow: undefined, percentile: 0.5 }).samples, 4, 'the shared 10 s window has not')
  meter.publishPressure('load-shedding', 0.4)
  t.equal(meterReading(meter, meter.latency, 0.5).pressure, 0.4)
})

t.test('event-loop figures: one stalled interval is not a trend, two in a row are', async (t) => {
  const loop = fakeLoop()
  const meter = new ServerMeter({ eventLoop: { sources: loop.sources } })
  const read = () => readMeter(meter, { latencyWindow: undefined, percentile: 0.95 })
  meter.eventLoop.sample()
  const calm = () => loop.interval(100, ...Array.from({ length: 40 }, () => 1))
  calm()
  meter.eventLoop.sample()
  // A 150 ms garbage collection among 35 ordinary ticks: that interval's p99 is the pause.
  loop.interval(350, 150, ...Array.from({ length: 34 }, () => 1))
  meter.eventLoop.sample()
  t.equal(meter.eventLoop.current.delayP99Ms, 150, 'the interval\'s own p99 is the stall')
  t.match(read(), { eventLoopDelayMs: 1, utilization: 0.2 }, 'the reading is the lower of the last two intervals')
  calm()
  meter.eventLoop.sample()
  t.match(read(), { eventLoopDelayMs: 1, utilization: 0.2 }, 'and the stall is gone the interval after')
  // A saturated loop: every interval's ticks are late.
  loop.interval(490, ...Array.from({ length: 4 }, () => 120))
  meter.eventLoop.sample()
  t.match(read(), { eventLoopDelayMs: 1 }, 'the first saturated interval waits for a second')
  loop.interval(495, ...Array.from({ length: 4 }, () => 130))
  meter.eventLoop.sample()
  t.match(read(), { eventLoopDelayMs: 120, utilization: 0.98 }, 'two in a row: a trend, read at once')
})
