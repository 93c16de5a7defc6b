/**
 * The subpaths: `./core` (the framework-free parts) reaches no framework, and `.` is the user API
 * of the Fastify plugin only.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as core from '../src/core.js'
import * as api from '../src/index.js'
import { FRAMEWORK, reachable as reachableFrom } from '../../../test/support/module-graph.js'

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')
const reachable = (file: string, valuesOnly = false): ReturnType<typeof reachableFrom> => reachableFrom(src, file, valuesOnly)

t.test('./core, and every module it reaches, imports neither Fastify nor Express', async (t) => {
  const { files, packages } = reachable('core.ts')
  t.ok(files.includes('request-protocol.ts') && files.includes('policy-options.ts'), 'the walk follows the imports')
  for (const name of packages) t.notOk(FRAMEWORK.test(name), `${name} is framework-free`)
  t.notOk(files.includes('plugin.ts'))
})

t.test('the plugin file is what imports Fastify (so the walk above can see one)', async (t) => {
  t.ok(reachable('index.ts').packages.has('fastify-plugin'))
})

t.test('no module imports an optional peer: ioredis is required only for a URL, flexible limiters are passed in', async (t) => {
  for (const entry of ['index.ts', 'core.ts']) {
    const { files, packages } = reachable(entry)
    t.ok(files.includes('create-store.ts') && files.includes('redis-connection.ts'), `${entry}: the walk reaches the Redis files`)
    for (const peer of ['ioredis', 'rate-limiter-flexible']) t.notOk(packages.has(peer), `${entry} reaches no import of ${peer}`)
  }
})

t.test('the decider builds no store', async (t) => {
  t.notOk(reachable('rate-limiter.ts', true).files.includes('create-store.ts'))
})

t.test('. exports the user API only; ./core the parts a mount is built from', async (t) => {
  t.same(Object.keys(api).sort(), [
    'QUOTA_EXCEEDED_TYPE', 'RATE_LIMIT_CHANNEL', 'RateLimitCostError', 'RateLimitOptionsError', 'default', 'spillwayRateLimit'
  ])
  for (const name of ['RateLimitProtocol', 'RateLimiter', 'createRateLimiter', 'createStore', 'normalizeOptions', 'routeSettings',
    'PolicySlots', 'MemoryStore', 'RedisStore', 'StoreFallback', 'TokenBucket', 'storeKey', 'rateLimitHeader', 'TOKEN_BUCKET_SCRIPT']) {
    t.ok(name in core, name)
  }
})
