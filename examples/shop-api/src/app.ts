import Fastify, { type FastifyInstance } from 'fastify'
import { SimulatedDatabase, type DatabaseOptions } from './database.js'
import { registerDashboard } from './dashboard.js'
import { LiveState } from './live-state.js'
import { createMetrics } from './metrics.js'
import { registerProtection } from './protection.js'
import { registerShopRoutes } from './routes.js'

export { ADMIN_PATH, BYPASS_ROUTES, apiKeyOf } from './protection.js'
export { DEFAULT_CHECKOUT_LIMIT } from './routes.js'

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

declare module 'fastify' {
  interface FastifyInstance {
    shopDatabase: SimulatedDatabase
  }
}

/**
 * The example shop: the same routes with or without the three Spillway plugins (`protection`),
 * plus `/metrics` and the live dashboard.
 */
export async function createShopApp(options: ShopAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const database = new SimulatedDatabase({ ...DEFAULT_DATABASE, ...options.database })
  app.decorate('shopDatabase', database)
  if (options.protection) {
    await registerProtection(app, {
      redisUrl: options.redisUrl,
      redisPrefix: options.redisPrefix,
      adminToken: options.adminToken,
      loadSignals: options.loadSignals,
      degradationDwellMs: options.degradationDwellMs
    })
  }
  registerShopRoutes(app, { protection: options.protection, database, cpuIterationsPerMs: options.cpuIterationsPerMs, checkoutLimit: options.checkoutLimit })

  const registry = createMetrics(app, options.protection, database)
  app.get('/metrics', { config: { rateLimit: false } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()))

  registerDashboard(app, new LiveState(app, options.protection, database, options.liveIntervalMs ?? 1000))
  return app
}
