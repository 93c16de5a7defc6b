import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SimulatedDatabase } from './database.js'
import { CPU_MS, cpuWork } from './work.js'

export const DEFAULT_CHECKOUT_LIMIT = { capacity: 5, refillPerSecond: 1 }

export interface ShopRoutesOptions {
  /** Whether the Spillway plugins are registered (`request.degrade` exists only then). */
  protection: boolean
  database: SimulatedDatabase
  cpuIterationsPerMs: number
  checkoutLimit?: { capacity: number, refillPerSecond: number } | undefined
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
 * The shop's routes. Handlers burn some CPU and query the simulated database, so that both kinds
 * of overload happen: a saturated event loop (flash crowd) and a slow dependency (slow database).
 * Priorities, the checkout rate limit and the degradable parts are declared here, in route config
 * and `request.degrade`, the way a user of the plugins writes them.
 */
export function registerShopRoutes(app: FastifyInstance, options: ShopRoutesOptions): void {
  const { protection, database, cpuIterationsPerMs } = options
  const cpu = (ms: number): void => { cpuWork(ms, cpuIterationsPerMs) }

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

}
