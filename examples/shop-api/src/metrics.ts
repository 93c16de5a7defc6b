import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { SimulatedDatabase } from './database.js'
import { SHOP_PRIORITIES } from './snapshot.js'

/**
 * Prometheus metrics of the three plugins (read from their public state at scrape time, so the
 * hot path pays nothing for them), of the simulated database, and of the requests by route and
 * status. One registry per app, so several apps in one process (tests) do not collide.
 */
export function createMetrics(app: FastifyInstance, protection: boolean, database: SimulatedDatabase): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'shop_' })

  const requests = new Counter({
    name: 'shop_http_requests_total',
    help: 'Responses sent, by route, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry]
  })
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({ route: request.routeOptions.url ?? 'unknown', method: request.method, status: String(reply.statusCode) })
  })

  new Gauge({
    name: 'shop_db_pool_connections',
    help: 'Simulated database pool: connections in use, requests waiting for one, and the pool size.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'in_use' }, database.inUse)
      this.set({ state: 'waiting' }, database.waiting)
      this.set({ state: 'size' }, database.poolSize)
    }
  })
  new Gauge({
    name: 'shop_db_slowdown_ratio',
    help: 'Query time multiplier of the simulated database (1 = healthy).',
    registers: [registry],
    collect() { this.set(database.slowdown) }
  })

  if (protection) registerPluginMetrics(app, registry)
  return registry
}

function registerPluginMetrics(app: FastifyInstance, registry: Registry): void {
  const registers = [registry]
  new Gauge({
    name: 'spillway_load_shedding_limit',
    help: 'Adaptive concurrency limit of the load shedder.',
    registers,
    collect() { this.set(app.loadShedding.state.limit) }
  })
  new Gauge({
    name: 'spillway_load_shedding_in_flight',
    help: 'Requests admitted by the load shedder and not finished.',
    registers,
    collect() { this.set(app.loadShedding.state.inFlight) }
  })
  new Gauge({
    name: 'spillway_load_shedding_pressure',
    help: 'Share of the sheddable levels refused (0 = nothing shed, 1 = only critical admitted).',
    registers,
    collect() { this.set(app.loadShedding.state.pressure) }
  })
  new Gauge({
    name: 'spillway_load_shedding_admitted_levels',
    help: 'Priority levels (rank x cohorts + cohort) the threshold admits.',
    registers,
    collect() { this.set(app.loadShedding.state.threshold.admittedLevels) }
  })
  // Counters that live in the plugins: exposed as Prometheus counters (so that rate() and reset
  // detection work) by re-reading the plugin's running total at each scrape.
  new Counter({
    name: 'spillway_load_shedding_shed_total',
    help: 'Requests refused by the load shedder, by priority and reason.',
    labelNames: ['priority', 'reason'] as const,
    registers,
    collect() {
      const { shed } = app.loadShedding.state
      this.reset()
      for (const priority of SHOP_PRIORITIES) {
        for (const [reason, count] of Object.entries(shed[priority])) this.inc({ priority, reason }, count)
      }
    }
  })
  new Counter({
    name: 'spillway_load_shedding_admitted_total',
    help: 'Requests admitted by the load shedder, by priority.',
    labelNames: ['priority'] as const,
    registers,
    collect() {
      const { admitted } = app.loadShedding.state
      this.reset()
      for (const priority of SHOP_PRIORITIES) this.inc({ priority }, admitted[priority])
    }
  })
  new Gauge({
    name: 'spillway_degradation_level',
    help: 'Degradation level in force (0 = healthy).',
    registers,
    collect() { this.set(app.degradation.level) }
  })
  new Gauge({
    name: 'spillway_degradation_feature_enabled',
    help: '1 while the feature is on, 0 while it is served by its fallback.',
    labelNames: ['feature'] as const,
    registers,
    collect() {
      for (const name of app.degradation.featureNames) this.set({ feature: name }, app.degradation.isOn(name) ? 1 : 0)
    }
  })
  new Counter({
    name: 'spillway_degradation_fallbacks_total',
    help: 'Fallbacks served, by feature.',
    labelNames: ['feature'] as const,
    registers,
    collect() {
      this.reset()
      for (const name of app.degradation.featureNames) this.inc({ feature: name }, app.degradation.fallbacksServed(name))
    }
  })
  new Counter({
    name: 'spillway_rate_limit_decisions_total',
    help: 'Rate-limit decisions, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      const stats = app.rateLimit.stats()
      this.reset()
      this.inc({ outcome: 'allowed' }, stats.allowed)
      this.inc({ outcome: 'limited' }, stats.limited)
    }
  })
  new Counter({
    name: 'spillway_rate_limit_store_errors_total',
    help: 'Errors and timeouts of the rate-limit store (Redis).',
    registers,
    collect() {
      const stats = app.rateLimit.stats()
      this.reset()
      this.inc(stats.storeErrors + stats.storeTimeouts)
    }
  })
  new Gauge({
    name: 'spillway_rate_limit_store_degraded',
    help: '1 while the rate limiter decides without its store (local fallback).',
    registers,
    collect() { this.set(app.rateLimit.degraded ? 1 : 0) }
  })
}
