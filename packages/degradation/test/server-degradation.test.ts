import { EventEmitter } from 'node:events'
import t from 'tap'
import type { LoadReading } from '../src/level-controller.js'
import { normalizeDegradationOptions } from '../src/options.js'
import type { RedisClientLike } from '../src/redis-overrides.js'
import { ServerDegradation } from '../src/server-degradation.js'
import { manualClock } from './helpers/clock.js'

function logger() {
  const lines: string[] = []
  const log = (level: string) => (payload: object, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(payload, ['from', 'to', 'reason'])}`)
  }
  return { lines, warn: log('warn'), info: log('info') }
}

const reading = (latencyMs: number): LoadReading => ({ latencyMs, samples: 100, eventLoopDelayMs: 0, utilization: 0, pressure: undefined })

t.test('built from the configuration as it is, with level changes logged: up at warn, down at info', async (t) => {
  const clock = manualClock()
  const wall = manualClock(5000)
  const config = normalizeDegradationOptions({
    features: [{ name: 'a', offAtLevel: 1 }, { name: 'b', offAtLevel: 2 }],
    levels: 2, thresholds: { latencyMs: [100, 200] }, dwellMs: 10, evaluateIntervalMs: 0, now: clock.now, wallNow: wall.now
  })
  let latencyMs = 0
  const log = logger()
  const running = new ServerDegradation(config, () => reading(latencyMs), log)
  t.equal(running.state.controller.levels, 2)
  t.equal(running.state.controller.dwellMs, 10)
  t.equal(running.state.featureNames, config.features.names, 'the declared table itself')
  latencyMs = 250
  running.state.evaluate()
  latencyMs = 0
  running.state.evaluate()
  clock.advance(10)
  running.state.evaluate()
  t.same(log.lines, ['warn spillway degradation level up {"from":0,"to":2,"reason":"latencyMs"}', 'info spillway degradation level down {"from":2,"to":1,"reason":"recovered"}'])
  running.state.overrides.forceLevel(2, { ttlMs: 100 })
  t.equal(running.state.status().overrides.level?.expiresAt, 5100, 'overrides expire on the configured wall clock')
})

t.test('nothing runs before start(); start() runs the evaluation timer, stop() stops it', async (t) => {
  const config = normalizeDegradationOptions({ features: [{ name: 'a', offAtLevel: 1 }], evaluateIntervalMs: 10 })
  let reads = 0
  const running = new ServerDegradation(config, () => {
    reads++
    return reading(0)
  }, logger())
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(reads, 0, 'not started')
  running.start()
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.ok(reads > 0, `read ${reads} times once started`)
  running.stop()
  const after = reads
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(reads, after, 'stopped')
})

t.test('with redis configured, start() shares the overrides and stop() lets the subscriber go', async (t) => {
  const subscriber = Object.assign(new EventEmitter(), {
    subscribed: [] as string[],
    disconnected: false,
    async subscribe(channel: string) { subscriber.subscribed.push(channel) },
    disconnect() { subscriber.disconnected = true }
  })
  const written: string[] = []
  const client: RedisClientLike = {
    get: async () => null,
    set: async (key) => { written.push(key) },
    publish: async () => 1,
    duplicate: () => subscriber
  }
  const config = normalizeDegradationOptions({ features: [{ name: 'a', offAtLevel: 1 }], evaluateIntervalMs: 0, redis: { client, prefix: 'p:', refreshIntervalMs: 0 } })
  const running = new ServerDegradation(config, () => reading(0), logger())
  t.equal(running.state.redis, undefined, 'not before start()')
  running.start()
  t.ok(running.state.redis, 'the sharing is on the state (status().redisErrors)')
  t.same(subscriber.subscribed, ['p:changes'])
  running.state.overrides.forceLevel(1)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(written, ['p:overrides'])
  running.stop()
  t.equal(subscriber.disconnected, true)
})
