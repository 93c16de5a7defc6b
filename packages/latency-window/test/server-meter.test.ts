import t from 'tap'
import { ServerMeter, sharedMeter } from '../src/server-meter.js'

t.test('one meter per server, whoever asks first', async (t) => {
  const serverA = {}
  const serverB = {}
  const first = sharedMeter(serverA, { latency: { windowMs: 5000 } })
  const again = sharedMeter(serverA, { latency: { windowMs: 60_000 } })
  t.equal(again, first)
  t.equal(first.latency.windowMs, 5000, 'the first options win')
  t.not(sharedMeter(serverB), first)
})

t.test('only the first plugin claims the measurement', async (t) => {
  const meter = new ServerMeter()
  t.equal(meter.measuredBy, undefined)
  t.ok(meter.claimMeasurement('load-shedding'))
  t.notOk(meter.claimMeasurement('degradation'))
  t.equal(meter.measuredBy, 'load-shedding')
})

t.test('bad options surface from the parts', async (t) => {
  t.throws(() => new ServerMeter({ latency: { slices: 0 } }), { code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message: /slices/ })
})

t.test('unknown option names throw, nested ones named by their path, through the caller\'s error', async (t) => {
  const code = 'SPILLWAY_LATENCY_WINDOW_OPTIONS'
  t.throws(() => new ServerMeter({ latencyWindow: {} } as never), { code, message: /^latencyWindow is not an option; the options are now, latency, eventLoop$/ })
  t.throws(() => new ServerMeter({ latency: { windowMS: 1000 } } as never), { code, message: /^latency\.windowMS is not an option; did you mean windowMs\?$/ })
  t.throws(() => new ServerMeter({ latency: { now: () => 1 } } as never), { code, message: /^latency\.now is not an option; latency takes windowMs, slices$/ },
    'the clock is the meter\'s own')
  t.throws(() => new ServerMeter({ eventLoop: { intervalMS: 100 } } as never), { code, message: /^eventLoop\.intervalMS is not an option; did you mean intervalMs\?$/ })
  const fail = (message: string) => Object.assign(new Error(message), { code: 'MINE' })
  t.throws(() => sharedMeter({}, { eventloop: {} } as never, fail), { code: 'MINE', message: /^eventloop is not an option; did you mean eventLoop\?$/ })
  t.throws(() => ServerMeter.checkOptions({ latency: { slice: 4 } }, fail), { code: 'MINE', message: /^latency\.slice is not an option; did you mean slices\?$/ },
    'checked without creating a meter')
  t.doesNotThrow(() => ServerMeter.checkOptions({ now: () => 1, latency: { windowMs: 1000, slices: 4 }, eventLoop: { intervalMs: 100, resolutionMs: 5 } }))
  t.doesNotThrow(() => ServerMeter.checkOptions(undefined), 'no options')
})

t.test('pressure is published by one controller and read by the others', async (t) => {
  const meter = new ServerMeter()
  t.equal(meter.pressure, 0)
  t.equal(meter.pressureSource, undefined)
  meter.publishPressure('load-shedding', 0.4)
  t.equal(meter.pressure, 0.4)
  t.equal(meter.pressureSource, 'load-shedding')
  meter.publishPressure('load-shedding', 7)
  t.equal(meter.pressure, 1, 'clamped to [0, 1]')
  meter.publishPressure('load-shedding', Number.NaN)
  t.equal(meter.pressure, 0)
})

t.test('a reader that needs another window shape gets one fed by the same measurements', async (t) => {
  let now = 0
  const meter = new ServerMeter({ now: () => now })
  t.equal(meter.latencyWindow(), meter.latency)
  t.equal(meter.latencyWindow({ windowMs: 10_000, slices: 10 }), meter.latency, 'the shared window has that shape')
  const short = meter.latencyWindow({ windowMs: 1000, slices: 4 })
  t.not(short, meter.latency)
  t.equal(meter.latencyWindow({ windowMs: 1000, slices: 4 }), short, 'asked again, the same window')
  meter.recordLatency(40, now)
  t.equal(meter.latency.count, 1)
  t.equal(short.count, 1)
  now = 1500
  t.equal(short.count, 0, 'the short window has forgotten it')
  t.equal(meter.latency.count, 1, 'the long one still counts it')
  t.throws(() => meter.latencyWindow({ windowMs: 0 }), { code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS' })
})

t.test('a later caller\'s options the meter cannot honour throw instead of being ignored', async (t) => {
  const server = {}
  const now = (): number => 0
  const meter = sharedMeter(server, { now, eventLoop: { intervalMs: 100 } })
  t.equal(sharedMeter(server), meter, 'no options: the same meter')
  t.equal(sharedMeter(server, { now, eventLoop: { intervalMs: 100 } }), meter, 'the same options: the same meter')
  t.equal(sharedMeter(server, { latency: { windowMs: 1000 } }), meter, 'a window shape it serves through latencyWindow()')
  t.throws(() => sharedMeter(server, { now: () => 1 }), { code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message: /^now must be the clock/ })
  t.throws(() => sharedMeter(server, { eventLoop: { intervalMs: 50 } }), { message: /^eventLoop must be the event-loop settings/ })
  const fail = (message: string): Error => Object.assign(new TypeError(message), { code: 'MINE' })
  t.throws(() => sharedMeter(server, { now: () => 1 }, fail), { code: 'MINE' }, 'through the caller\'s own error')
})
