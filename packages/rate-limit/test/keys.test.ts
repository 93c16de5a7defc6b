import t from 'tap'
import Fastify from 'fastify'
import { storeKey } from '../src/keys.js'
import { spillwayRateLimit } from '../src/plugin.js'

t.test('IP addresses and plain API keys pass through untouched', async (t) => {
  t.equal(storeKey('203.0.113.7', 128), '203.0.113.7')
  t.equal(storeKey('2001:db8::1', 128), '2001:db8::1')
  t.equal(storeKey('key_AbC-123.x', 128), 'key_AbC-123.x')
  t.equal(storeKey(42, 128), '42')
})

t.test('hostile keys are escaped: CRLF, spaces, braces (Cluster hash tags), percent, unicode', async (t) => {
  t.equal(storeKey('a\r\nSET x 1', 128), 'a%0D%0ASET%20x%201')
  t.equal(storeKey('}{evil', 128), '%7D%7Bevil')
  t.equal(storeKey('100%', 128), '100%25')
  t.equal(storeKey('ключ🔑', 128), encodeURIComponent('ключ🔑'))
  t.equal(storeKey('\ud800lone', 128), '%ud800%u006c%u006f%u006e%u0065', 'a lone surrogate still escapes')
  t.equal(storeKey('a b\u0000c', 128), 'a%20b%00c')
})

t.test('long keys are hashed to a bounded length, and never collide with an escaped key', async (t) => {
  const huge = 'x'.repeat(1_000_000)
  const hashed = storeKey(huge, 128)
  t.ok(hashed.length <= 128)
  t.match(hashed, /^%h[A-Za-z0-9_-]{43}$/)
  t.not(storeKey('x'.repeat(129), 128), storeKey('x'.repeat(130), 128))
  t.equal(storeKey('x'.repeat(128), 128), 'x'.repeat(128), 'at the bound: untouched')
  t.equal(storeKey(hashed, 128), '%25h' + hashed.slice(2), 'a client sending a hash-like key is escaped, so it is another key')
})

t.test('X-Forwarded-For is ignored without trustProxy, and used with it', async (t) => {
  for (const trustProxy of [false, true]) {
    const app = Fastify({ trustProxy })
    t.teardown(() => app.close())
    await app.register(spillwayRateLimit, { capacity: 1, refillPerSecond: 1, now: () => 0 })
    app.get('/', async () => 'ok')
    const statuses = []
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ url: '/', remoteAddress: '10.0.0.9', headers: { 'x-forwarded-for': `198.51.100.${i}` } })
      statuses.push(res.statusCode)
    }
    t.same(statuses, trustProxy ? [200, 200, 200] : [200, 429, 429],
      trustProxy ? 'each forwarded address is a client' : 'spoofed addresses do not buy fresh buckets')
  }
})

t.test('hostile keys from a key function are limited like any other, without errors', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit, { capacity: 1, refillPerSecond: 1, now: () => 0, key: (request) => String(request.headers['x-key']) })
  app.get('/', async () => 'ok')
  for (const key of ['x'.repeat(8000), '%h', 'ключ', '{a}', 'a%0D%0Ab']) {
    t.equal((await app.inject({ url: '/', headers: { 'x-key': key } })).statusCode, 200, `first ${key.slice(0, 10)}`)
    t.equal((await app.inject({ url: '/', headers: { 'x-key': key } })).statusCode, 429, `second ${key.slice(0, 10)}`)
  }
})
