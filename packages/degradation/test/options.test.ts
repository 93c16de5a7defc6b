import t from 'tap'
import { normalizeDegradationOptions } from '../src/options.js'

const features = [{ name: 'recommendations', offAtLevel: 1, fallback: [] }]

t.test('one frozen configuration, every default applied; the raw options are not kept', async (t) => {
  const config = normalizeDegradationOptions({ features })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.controller) && Object.isFrozen(config.meter) && Object.isFrozen(config.features))
  t.notOk('options' in config, 'nothing reads the raw options afterwards')
  t.match(config, {
    percentile: 0.95, evaluateIntervalMs: 500, header: 'Spillway-Degraded', statusRoute: false,
    admin: undefined, redis: undefined, wallNow: Date.now, latencyWindow: undefined,
    controller: { levels: 3, recoverRatio: 0.8, dwellMs: 10_000, minSamples: 20 }
  })
  t.same(config.meter, {}, 'no meter option given: the meter keeps its own defaults')
  t.same(config.features.names, ['recommendations'])
})

t.test('the controller\'s options are checked here, once, with the plugin\'s code', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ features, thresholds: { latencyMs: [3, 2, 1] } }, /^thresholds\.latencyMs must be false or an ascending array of 3 numbers/],
    [{ features, recoverRatio: 2 }, /^recoverRatio .*got 2/],
    [{ features, minSamples: -1 }, /^minSamples .*got -1/],
    [{ features, levels: 17 }, /^levels must be an integer in \[1, 16\], got 17/],
    [{ features: [{ name: 'a', offAtLevel: 2 }], levels: 1, thresholds: { latencyMs: [100] } }, /^features\[0\]\.offAtLevel must be an integer in \[1, 1\], got 2/]
  ]
  for (const [input, message] of cases) {
    t.throws(() => normalizeDegradationOptions(input), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, String(message))
  }
})

t.test('the shared meter gets the clock, window and event-loop settings given, and only those', async (t) => {
  const now = () => 1
  const latencyWindow = { windowMs: 2000, slices: 4 }
  const eventLoop = { intervalMs: 250 }
  const config = normalizeDegradationOptions({ features, now, latencyWindow, eventLoop })
  t.same(config.meter, { now, latency: latencyWindow, eventLoop })
  t.equal(config.controller.now, now, 'the controller runs on the same clock')
  t.equal(config.latencyWindow, latencyWindow, 'the window this plugin judges, whoever made the meter')
})

t.test('admin keeps a digest of its token; redis a frozen copy, its defaults left to RedisOverrides', async (t) => {
  const client = { get() {}, set() {}, publish() {}, duplicate() {} }
  const redis = { client, prefix: 'x:' }
  const config = normalizeDegradationOptions({ features, admin: { token: 'a-very-secret-admin-token' }, redis })
  t.equal(config.admin?.path, '/_spillway/degradation')
  t.equal(config.admin?.token.length, 32, 'sha-256, not the token')
  t.same(config.redis, { client, prefix: 'x:' })
  t.not(config.redis, redis)
  t.ok(Object.isFrozen(config.redis))
})
