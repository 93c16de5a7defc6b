/**
 * What the types catch of a misspelt option, checked by `pnpm check` (each `@ts-expect-error` fails
 * the type check once its line compiles), and what registration catches where they cannot.
 */
import t from 'tap'
import Fastify, { type RouteShorthandOptions } from 'fastify'
import { spillwayRateLimit, type RateLimitOptions, type RouteRateLimitOptions } from '../src/index.js'

const code = 'SPILLWAY_RATE_LIMIT_OPTIONS'

t.test('plugin options written inline: the type check catches a misspelt name', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    // @ts-expect-error refilPerSecond is not an option
    await app.register(spillwayRateLimit, { refilPerSecond: 1 }).ready()
  }, { code })
})

t.test('plugin options built beforehand and annotated: the type check catches a misspelt name', async (t) => {
  // @ts-expect-error refilPerSecond is not an option
  const options: RateLimitOptions = { capacity: 5, refilPerSecond: 1 }
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(spillwayRateLimit, options).ready() }, { code })
})

t.test('config.rateLimit written inline in app.get: only registration catches a misspelt name', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  // Fastify infers the route's config type from the literal (its ContextConfig type parameter) and
  // merges it with FastifyContextConfig, so an extra key type-checks here.
  t.throws(() => app.get('/', { config: { rateLimit: { refilPerSecond: 1 } } }, async () => 'ok'), { code })
})

t.test('config.rateLimit checked with satisfies: the type check catches a misspelt name', async (t) => {
  // @ts-expect-error refilPerSecond is not an option
  const limits = { capacity: 5, refilPerSecond: 1 } satisfies RouteRateLimitOptions
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  t.throws(() => app.get('/', { config: { rateLimit: limits } }, async () => 'ok'), { code })
})

t.test('route options annotated with RouteShorthandOptions: the type check catches a misspelt name', async (t) => {
  // @ts-expect-error refilPerSecond is not an option
  const routeOptions: RouteShorthandOptions = { config: { rateLimit: { refilPerSecond: 1 } } }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  t.throws(() => app.get('/', routeOptions, async () => 'ok'), { code })
})

t.test('the same objects without the typo type-check and register', async (t) => {
  const limits = { capacity: 5, refillPerSecond: 1 } satisfies RouteRateLimitOptions
  const routeOptions: RouteShorthandOptions = { config: { rateLimit: limits } }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit, { capacity: 10, refillPerSecond: 5 } satisfies RateLimitOptions)
  app.get('/', routeOptions, async () => 'ok')
  await app.ready()
  t.equal((await app.inject('/')).headers['ratelimit-policy'], '"default";q=5;w=5')
})
