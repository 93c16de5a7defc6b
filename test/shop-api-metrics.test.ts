/**
 * The example shop API's observability: /metrics exposes the three plugins' series (with the
 * values their own state reports), the dashboard's JSON and server-sent events carry the live
 * state, and with Redis two instances share the checkout limit and the degradation overrides.
 */
import { request } from 'node:http'
import t, { type Test } from 'tap'
import { createShopApp, type ShopAppOptions } from '../examples/shop-api/src/app.js'
import type { ShopSnapshot } from '../examples/shop-api/src/snapshot.js'
import { calibrateCpuWork } from '../examples/shop-api/src/work.js'
import { REDIS_URL, redisTestOptions } from './support/redis.js'

const cpuIterationsPerMs = calibrateCpuWork(1)

async function shop(t: Test, options: Partial<ShopAppOptions> = {}) {
  const app = await createShopApp({ protection: true, cpuIterationsPerMs, ...options })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** The value of one series in a Prometheus text exposition (labels as written, e.g. `{priority="high"}`). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('/metrics exposes the series of all three plugins, with their current values', async (t) => {
  const app = await shop(t, { checkoutLimit: { capacity: 1, refillPerSecond: 0.01 } })
  const checkout = { items: [{ productId: 1, quantity: 1 }] }
  await app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': 'm' }, payload: checkout })
  await app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': 'm' }, payload: checkout })
  app.degradation.overrides.forceLevel(1)
  app.degradation.evaluate()
  await app.inject({ method: 'GET', url: '/products/4' })

  const response = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /text\/plain/)
  const text = response.body
  const state = app.loadShedding.state
  t.equal(sample(text, 'spillway_load_shedding_limit'), state.limit, 'concurrency limit')
  t.equal(sample(text, 'spillway_load_shedding_admitted_total{priority="high"}'), state.admitted.high, 'admitted high')
  t.equal(sample(text, 'spillway_load_shedding_admitted_total{priority="normal"}'), state.admitted.normal)
  t.equal(sample(text, 'spillway_load_shedding_shed_total{priority="low",reason="threshold"}'), 0)
  t.ok(sample(text, 'spillway_load_shedding_pressure') !== undefined, 'pressure')
  t.equal(sample(text, 'spillway_degradation_level'), 1, 'degradation level')
  t.equal(sample(text, 'spillway_degradation_feature_enabled{feature="recommendations"}'), 0)
  t.equal(sample(text, 'spillway_degradation_feature_enabled{feature="search_suggestions"}'), 1)
  t.equal(sample(text, 'spillway_degradation_fallbacks_total{feature="recommendations"}'), 1)
  t.equal(sample(text, 'spillway_rate_limit_decisions_total{outcome="allowed"}'), 1)
  t.equal(sample(text, 'spillway_rate_limit_decisions_total{outcome="limited"}'), 1)
  t.equal(sample(text, 'spillway_rate_limit_store_degraded'), 0)
  t.equal(sample(text, 'shop_http_requests_total{route="/checkout",method="POST",status="429"}'), 1, 'requests by route and status')
  t.match(text, /^# TYPE spillway_load_shedding_shed_total counter$/m, 'running totals are exposed as counters')
  t.match(text, /^# TYPE spillway_rate_limit_decisions_total counter$/m)
  t.ok(sample(text, 'shop_db_pool_connections{state="size"}') === 10, 'database pool')
})

t.test('unprotected /metrics has no plugin series', async (t) => {
  const app = await shop(t, { protection: false })
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.notMatch(text, /spillway_/)
  t.match(text, /shop_db_pool_connections/)
})

t.test('the dashboard page, its state JSON and its event stream', async (t) => {
  const app = await shop(t, { liveIntervalMs: 100 })
  const page = await app.inject({ method: 'GET', url: '/spillway' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /EventSource\('\/spillway\/events'\)/)

  app.degradation.overrides.forceLevel(2)
  app.degradation.evaluate()
  await new Promise((resolve) => setTimeout(resolve, 250))
  const state = (await app.inject({ method: 'GET', url: '/spillway/state' })).json() as ShopSnapshot
  t.equal(state.degradation?.level, 2)
  t.same(state.degradation?.featuresOff, ['recommendations', 'search_suggestions'])
  t.equal(state.rateLimit?.store, 'memory')

  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const events = await new Promise<ShopSnapshot[]>((resolve, reject) => {
    const got: ShopSnapshot[] = []
    const req = request({ host: '127.0.0.1', port, path: '/spillway/events' }, (response) => {
      t.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8')
      let buffer = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          got.push(JSON.parse(buffer.slice(buffer.indexOf('data: ') + 6, end)) as ShopSnapshot)
          buffer = buffer.slice(end + 2)
          if (got.length === 3) {
            req.destroy()
            resolve(got)
          }
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(events.length, 3, 'one event on connect, then one per tick')
  t.ok(events.every((e) => e.degradation?.level === 2), 'each carries the level')
  t.ok(events[2]!.at > events[0]!.at, 'snapshots advance')
})

t.test('with Redis, two instances share the checkout limit and the degradation overrides', await redisTestOptions(), async (t) => {
  const redisPrefix = `shop-api-test:${process.pid}:${Date.now()}:`
  const options = { redisUrl: REDIS_URL, redisPrefix, checkoutLimit: { capacity: 4, refillPerSecond: 0.01 } }
  const a = await shop(t, options)
  const b = await shop(t, options)
  t.equal(a.rateLimit.store, 'redis')
  const checkout = (app: typeof a) => app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': 'shared-key' }, payload: { items: [{ productId: 1, quantity: 1 }] } })
  const codes: number[] = []
  for (let i = 0; i < 6; i++) codes.push((await checkout(i % 2 === 0 ? a : b)).statusCode)
  t.same(codes, [201, 201, 201, 201, 429, 429], 'four checkouts in all across both instances, then 429')

  a.degradation.overrides.forceLevel(1, { ttlMs: 30_000 })
  const deadline = Date.now() + 3000
  while (b.degradation.status().forcedLevel !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
  b.degradation.evaluate()
  t.equal(b.degradation.level, 1, 'the other instance adopts the forced level')
  a.degradation.overrides.clearLevel()
})
