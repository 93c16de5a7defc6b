import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import degradation from '@spillway/degradation'
import loadShedding from '@spillway/load-shedding'
import rateLimit from '@spillway/rate-limit'
import { DASHBOARD_EVENTS_PATH, DASHBOARD_PATH, DASHBOARD_STATE_PATH } from './dashboard.js'

export const ADMIN_PATH = '/_spillway/degradation'
/** Routes an operator needs most during an overload: never shed. */
export const BYPASS_ROUTES = ['/health', '/metrics', DASHBOARD_PATH, DASHBOARD_EVENTS_PATH, DASHBOARD_STATE_PATH]

export interface ProtectionOptions {
  redisUrl?: string | undefined
  redisPrefix?: string | undefined
  adminToken?: string | undefined
  loadSignals?: Record<string, () => number> | undefined
  degradationDwellMs?: number | undefined
}

/** The client's API key: rate limits and shedding cohorts are per key; anonymous callers share their IP's. */
export function apiKeyOf(request: FastifyRequest): string {
  const key = request.headers['x-api-key']
  return typeof key === 'string' && key !== '' ? key : `ip:${request.ip}`
}

/**
 * The three Spillway plugins, through their public options, as a user would register them: before
 * the routes, since each reads route config (`priority`, `rateLimit`) in `onRoute`.
 */
export async function registerProtection(app: FastifyInstance, options: ProtectionOptions): Promise<void> {
  const prefix = options.redisPrefix ?? 'shop-api:'
  // In either order the shedder decides first on each route and gives its slot back when the rate
  // limiter refuses: a request refused by one protection is charged by neither.
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
  // The degradation plugin takes a client (it duplicates it for its subscription and never closes
  // ours); the rate limiter takes the URL and owns its own client.
  let redis: Redis | undefined
  if (options.redisUrl !== undefined) {
    const client = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 })
    app.addHook('onClose', async () => { client.disconnect() })
    redis = client
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
