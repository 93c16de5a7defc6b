/**
 * The overload benchmark's scenario (examples/overload-bench) as an Express app, for its Express
 * targets: `unprotected`, `express-rate-limit` (one global limit at the measured capacity — the
 * usual Express answer to overload, keyed on nothing so that it caps the whole server),
 * `spillway` (our `loadShedding()` mounted first, configured as the Fastify target is) and
 * `spillway-front` (the same shedder in front of Express: `http.createServer(shed.front(app))`).
 * Lives here so that the benchmark needs no Express dependency of its own.
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import express from 'express'
import { rateLimit as expressRateLimit } from 'express-rate-limit'
import { FakePool, ROUTES, burnCpu, type Scenario } from '../../../examples/overload-bench/src/scenario-app.js'
import { loadShedding } from '../src/load-shedding.js'

export type ExpressTarget = 'unprotected' | 'express-rate-limit' | 'spillway' | 'spillway-front'
export const EXPRESS_TARGETS: readonly ExpressTarget[] = ['unprotected', 'express-rate-limit', 'spillway', 'spillway-front']

export interface ExpressScenarioOptions {
  scenario: Scenario
  target: ExpressTarget
  cpuIterations: number
  /** Requests per second the unprotected server managed: the express-rate-limit target's limit. */
  capacityPerSecond: number
  poolSize?: number
  holdMs?: number
}

/** Starts the app on 127.0.0.1 with the benchmark's generous backlog; answers the server and a stop function. */
export async function listenExpressScenario(options: ExpressScenarioOptions): Promise<{ server: Server, stop: () => void }> {
  const { scenario, target, cpuIterations } = options
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  const pool = new FakePool(options.poolSize ?? 8, options.holdMs ?? 20)
  const priorityOf = new Map<string, 'high' | 'normal' | 'low'>(ROUTES.map((route) => [route.path, route.priority]))
  let stopShedding = (): void => {}
  let listener: RequestListener = app

  if (target === 'express-rate-limit') {
    app.use(expressRateLimit({
      windowMs: 1000,
      limit: Math.max(1, Math.round(options.capacityPerSecond)),
      keyGenerator: () => 'everyone',
      skip: (req) => req.path === '/health',
      standardHeaders: 'draft-8',
      legacyHeaders: false
    }))
  } else if (target === 'spillway' || target === 'spillway-front') {
    const shed = loadShedding({
      bypass: ['/health'],
      cohortKey: (req) => {
        const user = req.headers['x-user-id']
        return typeof user === 'string' ? user : undefined
      },
      // The Fastify target names the priority in route config; before routing, the path says it.
      priority: (req) => priorityOf.get(req.path),
      statusRoute: '/_load-shedding'
    })
    stopShedding = () => shed.close()
    if (target === 'spillway') {
      app.use(shed)
    } else {
      listener = shed.front(app, {
        priority: (_req, path) => priorityOf.get(path),
        cohortKey: (req) => {
          const user = req.headers['x-user-id']
          return typeof user === 'string' ? user : undefined
        }
      })
    }
  }

  const work = scenario === 'cpu'
    ? async () => { burnCpu(cpuIterations) }
    : async () => { await pool.query() }
  for (const route of ROUTES) {
    app.get(route.path, async (_req, res) => {
      await work()
      res.json({ ok: true })
    })
  }
  app.get('/health', (_req, res) => { res.json({ ok: true }) })

  const server = await new Promise<Server>((resolve) => {
    const listening = createServer(listener).listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, () => resolve(listening))
  })
  return {
    server,
    stop: () => {
      stopShedding()
      server.closeAllConnections()
      server.close()
    }
  }
}
