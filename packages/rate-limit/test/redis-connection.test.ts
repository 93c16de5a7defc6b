import t from 'tap'
import { Redis } from 'ioredis'
import { connectRedis } from '../src/redis-connection.js'
import { RateLimitOptionsError } from '../src/errors.js'

const URL_WITH_PASSWORD = 'redis://:s3cret@127.0.0.1:6379'
const notFound = () => { throw Object.assign(new Error("Cannot find module 'ioredis'"), { code: 'MODULE_NOT_FOUND' }) }

t.test('a URL without ioredis installed: an options error naming the package, not the URL (it may hold a password)', async (t) => {
  const error = t.throws(() => connectRedis(URL_WITH_PASSWORD, notFound)) as Error
  t.ok(error instanceof RateLimitOptionsError)
  t.match(error, { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^redis is a URL, which needs the ioredis package \(5 or 6\)/ })
  t.notMatch(error.message, /s3cret/)
})

t.test('ioredis 4 (no named Redis export): the same advice', async (t) => {
  t.throws(() => connectRedis(URL_WITH_PASSWORD, () => ({ default: function Redis() {} })), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS' })
})

t.test('any other failure to load ioredis is not hidden', async (t) => {
  const broken = new SyntaxError('Unexpected token')
  t.throws(() => connectRedis(URL_WITH_PASSWORD, () => { throw broken }), broken)
})

t.test('installed: a client of its own from the URL, without the offline queue', async (t) => {
  const client = connectRedis('redis://127.0.0.1:1')
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  t.ok(client instanceof Redis)
  t.match((client as unknown as Redis).options, { enableOfflineQueue: false, maxRetriesPerRequest: 1, port: 1 })
})
