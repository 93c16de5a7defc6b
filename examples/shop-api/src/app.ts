import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import degradation from '@spillway/degradation'
import loadShedding from '@spillway/load-shedding'
import rateLimit from '@spillway/rate-limit'
import { SimulatedDatabase, type DatabaseOptions } from './database.js'
import { DASHBOARD_EVENTS_PATH, DASHBOARD_PATH, DASHBOARD_STATE_PATH, registerDashboard } from './dashboard.js'
import { LiveState } from './live-state.js'
import { createMetrics } from './metrics.js'
import { CPU_MS, cpuWork } from './work.js'

export interface ShopAppOptions {
  /** `false` builds the same shop without any Spillway plugin: the demo's baseline. */
  protection: boolean
  /** Iterations of the CPU loop that take 1 ms here (`calibrateCpuWork(1)`). */
  cpuIterationsPerMs: number
  database?: Partial<DatabaseOptions>
  /** Share rate limits and degradation overrides through this Redis; memory otherwise. */
  redisUrl?: string
  /** Start of every Redis key this app writes, so that several demos share one Redis safely. */
  redisPrefix?: string
  /** Bearer token of the degradation admin route (≥ 16 characters); no admin route without it. */
  adminToken?: string
  /** Checkout rate limit per API key. */
  checkoutLimit?: { capacity: number, refillPerSecond: number }
  /** How long load must stay low before the degradation level comes down one step, ms. */
  degradationDwellMs?: number
  /** Extra overload signals for the load shedder (`signals` option: ≥ 1 is overload), e.g. a queue's fill ratio. */
  loadSignals?: Record<string, () => number>
  /** How often the dashboard snapshot is taken, ms. */
  liveIntervalMs?: number
  logger?: boolean
}

export const DEFAULT_DATABASE: DatabaseOptions = { poolSize: 10, queryMs: 4, acquireTimeoutMs: 3000 }
export const DEFAULT_CHECKOUT_LIMIT = { capacity: 5, refillPerSecond: 1 }
export const ADMIN_PATH = '/_spillway/degradation'
/** Routes an operator needs most during an overload: never shed. */
export const BYPASS_ROUTES = ['/health', '/metrics', DASHBOARD_PATH, DASHBOARD_EVENTS_PATH, DASHBOARD_STATE_PATH]

declare module 'fastify' {
  interface FastifyInstance {
    shopDatabase: SimulatedDatabase
  }
}

/** The client's API key: rate limits and shedding cohorts are per key; anonymous callers share their IP's. */
export function apiKeyOf(request: FastifyRequest): string {
  const key = request.headers['x-api-key']
  return typeof key === 'string' && key !== '' ? key : `ip:${request.ip}`
}

interface CheckoutBody { items: Array<{ productId: number, quantity: number }> }

const checkoutSchema = {
  body: {
    type: 'object',
    required: ['items'],
    properties: {
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 50,
        items: {
          type: 'object',
          required: ['productId', 'quantity'],
          properties: { productId: { type: 'integer', minimum: 1 }, quantity: { type: 'integer', minimum: 1, maximum: 100 } }
        }
      }
    }
  }
} as const

/**
 * The example shop. Handlers burn some CPU and query a simulated database with a bounded pool, so
 * that both kinds of overload happen: a saturated event loop (flash crowd) and a slow dependency
 * (slow-database episode). With `protection`, the three Spillway plugins are registered through
 * their public options, before the routes (they read route config in `onRoute`).
 */
export async function createShopApp(options: ShopAppOptions): Promise<FastifyInstance> {
  const { protection, cpuIterationsPerMs } = options
  const app = Fastify({ logger: options.logger ?? false })
  const database = new SimulatedDatabase({ ...DEFAULT_DATABASE, ...options.database })
  app.decorate('shopDatabase', database)
  const cpu = (ms: number): void => { cpuWork(ms, cpuIterationsPerMs) }

  if (protection) {
    const prefix = options.redisPrefix ?? 'shop-api:'
    // Rate limiting first: an abusive client is refused before it counts as an arrival for the shedder.
    await app.register(rateLimit, {
      global: false,
      key: apiKeyOf,
      prefix: `${prefix}rl`,
      ...(options.redisUrl === undefined ? {} : { redis: options.redisUrl })
    })
    await app.register(loadShedding, {
      bypass: BYPASS_ROUTES,
      cohortKey: apiKeyOf,
      ...(options.loadSignals === undefined ? {} : { signals: options.loadSignals })
    })
    let redis: Redis | undefined
    if (options.redisUrl !== undefined) {
      redis = new Redis(options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 })
      app.addHook('onClose', async () => { redis?.disconnect() })
    }
    await app.register(degradation, {
      features: [
        { name: 'recommendations', offAtLevel: 1, fallback: [] },
        { name: 'search_suggestions', offAtLevel: 2, fallback: [] }
      ],
      dwellMs: options.degradationDwellMs ?? 3000,
      ...(options.adminToken === undefined ? {} : { admin: { token: options.adminToken, path: ADMIN_PATH } }),
      ...(redis === undefined ? {} : { redis: { client: redis, prefix: `${prefix}degradation:` } })
    })
  }

  /** The full answer while the feature is on; its fallback while degradation turned it off. */
  const withFeature = async <T>(request: FastifyRequest, name: string, full: () => Promise<T>): Promise<T | null> =>
    protection ? await request.degrade(name, full) as T | null : await full()

  app.get('/health', { config: { rateLimit: false } }, async () => ({ status: 'ok' }))

  app.post<{ Body: CheckoutBody }>('/checkout', {
    schema: checkoutSchema,
    config: { priority: 'high', rateLimit: options.checkoutLimit ?? DEFAULT_CHECKOUT_LIMIT }
  }, async (request, reply) => {
    cpu(CPU_MS.checkout)
    const { items } = request.body
    await database.query('reserve stock')
    const orderId = await database.query(Math.floor(Math.random() * 1e9))
    const totalCents = items.reduce((sum, item) => sum + item.quantity * (500 + (item.productId % 50) * 100), 0)
    return reply.code(201).send({ orderId, totalCents })
  })

  app.get<{ Params: { id: string } }>('/products/:id', { config: { priority: 'normal' } }, async (request, reply) => {
    const id = Number(request.params.id)
    if (!Number.isInteger(id) || id < 1) return reply.code(404).send({ error: 'no such product' })
    cpu(CPU_MS.product)
    const product = await database.query({ id, name: `Product ${id}`, priceCents: 500 + (id % 50) * 100 })
    const recommendations = await withFeature(request, 'recommendations', async () => {
      cpu(CPU_MS.recommendations)
      return await database.query([1, 2, 3].map((k) => ({ id: ((id * 7 + k * 13) % 1000) + 1 })))
    })
    return { ...product, recommendations }
  })

  app.get<{ Querystring: { q?: string } }>('/search', { config: { priority: 'normal' } }, async (request) => {
    const q = request.query.q ?? ''
    cpu(CPU_MS.search)
    const results = await database.query([1, 2, 3, 4, 5].map((k) => ({ id: ((q.length * 31 + k * 17) % 1000) + 1 })))
    const suggestions = await withFeature(request, 'search_suggestions', async () => {
      cpu(CPU_MS.searchSuggestions)
      return [`${q} sale`, `${q} new`, `best ${q}`]
    })
    return { q, results, suggestions }
  })

  app.post('/analytics', { config: { priority: 'low' } }, async (_request, reply) => {
    cpu(CPU_MS.analytics)
    await database.query('insert event')
    return reply.code(202).send({ accepted: true })
  })

  const registry = createMetrics(app, protection, database)
  app.get('/metrics', { config: { rateLimit: false } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()))

  registerDashboard(app, new LiveState(app, protection, database, options.liveIntervalMs ?? 1000))
  return app
}
