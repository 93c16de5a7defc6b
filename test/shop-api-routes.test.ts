/**
 * The example shop API (examples/shop-api): every route's priority, rate limit and degradation
 * behave as its README documents, through the three plugins' public options.
 */
import t, { type Test } from 'tap'
import { calibrateCpuWork } from '../examples/shop-api/src/work.js'
import { createShopApp, type ShopAppOptions } from '../examples/shop-api/src/app.js'

const cpuIterationsPerMs = calibrateCpuWork(1)
const CHECKOUT = { items: [{ productId: 3, quantity: 2 }] }

async function shop(t: Test, options: Partial<ShopAppOptions> = {}) {
  const app = await createShopApp({ protection: true, cpuIterationsPerMs, ...options })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('each route counts under its documented priority; /health is never counted by the shedder', async (t) => {
  const app = await shop(t)
  const before = { ...app.loadShedding.state.admitted }
  const send = async (method: 'GET' | 'POST', url: string, payload?: object) => {
    const response = await app.inject({ method, url, headers: { 'x-api-key': 'k1' }, ...(payload === undefined ? {} : { payload }) })
    t.ok(response.statusCode < 300, `${method} ${url} → ${response.statusCode}`)
  }
  await send('POST', '/checkout', CHECKOUT)
  await send('GET', '/products/7')
  await send('GET', '/search?q=shoe')
  await send('POST', '/analytics', { event: 'view' })
  await send('GET', '/health')
  const after = app.loadShedding.state.admitted
  t.equal(after.high - before.high, 1, 'checkout: high')
  t.equal(after.normal - before.normal, 2, 'products and search: normal')
  t.equal(after.low - before.low, 1, 'analytics: low')
  t.equal(after.critical - before.critical, 0, 'health: bypassed, not admitted as anything')
})

t.test('under a forced overload signal, low is shed first and high last; /health always answers', async (t) => {
  let overloadRatio = 0
  const app = await shop(t, { loadSignals: { test: () => overloadRatio } })
  const statuses = async (): Promise<Record<string, number>> => {
    const results: Record<string, number> = {}
    for (const [name, method, url] of [['high', 'POST', '/checkout'], ['normal', 'GET', '/products/1'], ['low', 'POST', '/analytics'], ['health', 'GET', '/health']] as const) {
      const response = await app.inject({ method, url, headers: { 'x-api-key': `user-${name}` }, ...(method === 'POST' ? { payload: CHECKOUT } : {}) })
      results[name] = response.statusCode
    }
    return results
  }
  const first = await statuses()
  t.same([first.normal, first.low, first.health], [200, 202, 200], 'calm: everything answered')
  overloadRatio = 3
  const seen = { lowShedAt: -1, normalShedAt: -1, highShedAt: -1 }
  for (let step = 0; step < 60; step++) {
    // Traffic of every priority, so that the threshold has arrival rates to act on.
    for (let i = 0; i < 20; i++) {
      await app.inject({ method: 'GET', url: `/products/${i + 1}`, headers: { 'x-api-key': `u${i}` } })
      await app.inject({ method: 'POST', url: '/analytics', headers: { 'x-api-key': `u${i}` }, payload: {} })
    }
    app.loadShedding.update()
    const now = await statuses()
    t.equal(now.health, 200, 'health answered while shedding')
    if (now.low === 503 && seen.lowShedAt === -1) seen.lowShedAt = step
    if (now.normal === 503 && seen.normalShedAt === -1) seen.normalShedAt = step
    if (now.high === 503 && seen.highShedAt === -1) seen.highShedAt = step
    if (seen.normalShedAt !== -1) break
  }
  t.not(seen.lowShedAt, -1, 'low gets shed')
  t.not(seen.normalShedAt, -1, 'normal gets shed')
  t.ok(seen.lowShedAt <= seen.normalShedAt, `low shed (step ${seen.lowShedAt}) no later than normal (step ${seen.normalShedAt})`)
  t.equal(seen.highShedAt, -1, 'high (checkout) still admitted when normal is shed')
})

t.test('checkout is rate limited per API key; other routes are not limited', async (t) => {
  const app = await shop(t, { checkoutLimit: { capacity: 3, refillPerSecond: 0.01 } })
  const checkout = (key: string) => app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': key }, payload: CHECKOUT })
  for (let i = 0; i < 3; i++) t.equal((await checkout('alice')).statusCode, 201, `alice checkout ${i + 1} of 3`)
  const refused = await checkout('alice')
  t.equal(refused.statusCode, 429, 'the 4th checkout of one key is refused')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After')
  t.match(refused.headers['content-type'], /application\/problem\+json/)
  t.equal((await checkout('bob')).statusCode, 201, 'another key has its own bucket')
  const product = await app.inject({ method: 'GET', url: '/products/1', headers: { 'x-api-key': 'alice' } })
  t.equal(product.statusCode, 200, 'products are not limited')
  t.equal(product.headers.ratelimit, undefined, 'and carry no rate-limit headers')
  t.equal(app.rateLimit.stats().limited, 1)
})

t.test('checkout validates its body', async (t) => {
  const app = await shop(t)
  const response = await app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': 'v' }, payload: { items: [] } })
  t.equal(response.statusCode, 400)
})

t.test('level 1 turns recommendations off, level 2 also search suggestions; both come back', async (t) => {
  const app = await shop(t)
  const product = async () => app.inject({ method: 'GET', url: '/products/9' })
  const search = async () => app.inject({ method: 'GET', url: '/search?q=lamp' })

  const healthy = await product()
  t.equal(healthy.json().recommendations.length, 3, 'level 0: recommendations served')
  t.equal(healthy.headers['spillway-degraded'], undefined)
  t.equal((await search()).json().suggestions.length, 3, 'level 0: suggestions served')

  app.degradation.overrides.forceLevel(1, { reason: 'test' })
  app.degradation.evaluate()
  const degraded = await product()
  t.same(degraded.json().recommendations, [], 'level 1: recommendations are the fallback []')
  t.equal(degraded.headers['spillway-degraded'], 'recommendations')
  t.equal(degraded.json().name, 'Product 9', 'the product itself is still served')
  t.equal((await search()).json().suggestions.length, 3, 'level 1: suggestions still served')

  app.degradation.overrides.forceLevel(2, { reason: 'test' })
  app.degradation.evaluate()
  const search2 = await search()
  t.same(search2.json().suggestions, [], 'level 2: suggestions are the fallback []')
  t.equal(search2.headers['spillway-degraded'], 'search_suggestions')
  t.equal(search2.json().results.length, 5, 'search results are still served')

  app.degradation.overrides.clearLevel()
  app.degradation.evaluate()
  t.equal((await product()).json().recommendations.length, 3, 'override cleared: recommendations back')
})

t.test('the degradation admin route forces a level with the bearer token only', async (t) => {
  const adminToken = 'test-token-0123456789'
  const app = await shop(t, { adminToken })
  const put = (authorization: string) => app.inject({ method: 'PUT', url: '/_spillway/degradation', headers: { authorization }, payload: { level: 1 } })
  t.equal((await put('Bearer wrong-token-0123456789')).statusCode, 401)
  t.equal(app.degradation.level, 0)
  t.ok((await put(`Bearer ${adminToken}`)).statusCode < 300)
  app.degradation.evaluate()
  t.equal(app.degradation.level, 1)
})

t.test('unprotected: the same routes, no plugin, full answers', async (t) => {
  const app = await shop(t, { protection: false })
  t.equal(app.hasDecorator('loadShedding'), false)
  for (let i = 0; i < 8; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/checkout', headers: { 'x-api-key': 'same' }, payload: CHECKOUT })).statusCode, 201)
  }
  t.equal((await app.inject({ method: 'GET', url: '/products/2' })).json().recommendations.length, 3)
  t.equal((await app.inject({ method: 'GET', url: '/search?q=x' })).json().suggestions.length, 3)
  t.equal((await app.inject({ method: 'POST', url: '/analytics', payload: {} })).statusCode, 202)
})

t.test('a slow database fills the pool: requests queue, then fail after the acquire timeout', async (t) => {
  const app = await shop(t, { protection: false, database: { poolSize: 2, queryMs: 30, acquireTimeoutMs: 50 } })
  app.shopDatabase.slowdown = 4
  const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => app.inject({ method: 'POST', url: '/analytics', payload: { i } })))
  const codes = responses.map((r) => r.statusCode)
  t.equal(codes.filter((c) => c === 202).length, 2, 'only the pool size gets a connection in time')
  t.equal(codes.filter((c) => c === 500).length, 4, 'the others time out waiting for one')
  t.equal(app.shopDatabase.timeouts, 4)
})
