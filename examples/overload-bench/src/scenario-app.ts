import underPressure from '@fastify/under-pressure'
import loadShedding from '@spillway/load-shedding'
import Fastify, { type FastifyInstance } from 'fastify'
import { DATABASE_URL, PostgresPool } from './postgres-pool.js'
import type { RequestKind } from './open-loop.js'

/**
 * CPU: each request burns ~2 ms of synchronous work. IO: each waits for one of 8 simulated pooled
 * "connections" held 20 ms. PG: each runs one ~20 ms query through a real node-postgres pool of 4.
 */
export type Scenario = 'cpu' | 'io' | 'pg'
/** `spillway-front`: the same plugin with its front door (`front` option). */
export type Target = 'unprotected' | 'under-pressure' | 'spillway' | 'spillway-front'

export const SCENARIOS: readonly Scenario[] = ['cpu', 'io', 'pg']
export const TARGETS: readonly Target[] = ['unprotected', 'under-pressure', 'spillway', 'spillway-front']

export interface ScenarioOptions {
  scenario: Scenario
  target: Target
  /** Iterations of the CPU loop that cost ~2 ms on this machine (see `calibrateCpuWork`). */
  cpuIterations: number
  /** IO scenario: pool size and how long a request holds a connection. */
  poolSize?: number
  holdMs?: number
  /**
   * PG scenario: the pool its routes query (its owner closes it). When omitted, one of 4
   * connections to `DATABASE_URL` with 20 ms queries is made and closed with the app.
   */
  database?: PostgresPool
  /** Fastify's request logging (pino, two lines per request, a refusal included) into this file. Default off. */
  logFile?: string
}

/** The PG scenario's pool: small, so that a few hundred requests per second saturate it. */
export const PG_POOL = { maxConnections: 4, queryMs: 20 } as const

/** The benchmarks' traffic on the work routes: 10% high, 60% normal, 30% low. */
export const WORK_MIX: readonly RequestKind[] = [
  { name: 'high', path: '/high', weight: 10 },
  { name: 'normal', path: '/normal', weight: 60 },
  { name: 'low', path: '/low', weight: 30 }
]

/** The routes every target serves; the priority is route config, so all three targets see the same traffic. */
export const ROUTES = [
  { path: '/high', priority: 'high' },
  { path: '/normal', priority: 'normal' },
  { path: '/low', priority: 'low' }
] as const

let sink = 0
/**
 * A fixed amount of CPU work, so that every target's process pays the same per request. A
 * xorshift on 32-bit integers: bitwise operations cannot overflow, so V8 never deoptimizes the
 * loop. An LCG on doubles did, mid-run, once the server had been busy for a few seconds — the work
 * then cost 17% (and with an integer LCG 180%) more from that moment on, which read as lost goodput.
 */
export function burnCpu(iterations: number): number {
  let x = sink | 1
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
  }
  sink = x
  return x
}

/** Iterations of `burnCpu` that take `targetMs` on this machine (median of a few trials). */
export function calibrateCpuWork(targetMs = 2): number {
  const probe = 200_000
  burnCpu(probe)
  const trials: number[] = []
  for (let i = 0; i < 9; i++) {
    const start = performance.now()
    burnCpu(probe)
    trials.push(performance.now() - start)
  }
  trials.sort((a, b) => a - b)
  const msPerProbe = trials[4] ?? 1
  return Math.max(1, Math.round((probe * targetMs) / msPerProbe))
}

/** A FIFO pool of connections, like a database client's: requests queue for a free connection. */
export class FakePool {
  readonly size: number
  readonly holdMs: number
  #free: number
  readonly #waiters: Array<() => void> = []

  constructor(size: number, holdMs: number) {
    this.size = size
    this.holdMs = holdMs
    this.#free = size
  }

  get waiting(): number {
    return this.#waiters.length
  }

  async query(): Promise<void> {
    if (this.#free > 0) this.#free--
    else await new Promise<void>((resolve) => this.#waiters.push(resolve))
    await new Promise((resolve) => setTimeout(resolve, this.holdMs))
    const next = this.#waiters.shift()
    if (next !== undefined) next()
    else this.#free++
  }
}

/** The Fastify app of one scenario behind one target. */
export async function createScenarioApp(options: ScenarioOptions): Promise<FastifyInstance> {
  const { scenario, target, cpuIterations } = options
  const app = Fastify({ logger: options.logFile === undefined ? false : { level: 'info', file: options.logFile } })
  const pool = new FakePool(options.poolSize ?? 8, options.holdMs ?? 20)
  const database = scenario === 'pg' ? options.database ?? openDatabase(app) : undefined

  if (target === 'under-pressure') {
    // Tuned as the issue describes: tail-ish event-loop delay 10 ms or ELU 0.9, sampled every 100 ms
    // (the default is 1 s); the health route lets requests through via its pressureHandler.
    await app.register(underPressure, { maxEventLoopDelay: 10, maxEventLoopUtilization: 0.9, sampleInterval: 100, retryAfter: 1 })
  } else if (target === 'spillway' || target === 'spillway-front') {
    const userOf = (request: { headers: Record<string, string | string[] | undefined> }): string | undefined => {
      const user = request.headers['x-user-id']
      return typeof user === 'string' ? user : undefined
    }
    // /health is not bypassed: it is `critical`, which the threshold never sheds, so its figure
    // shows how the shedder itself treats critical work (the run queue serves it first).
    await app.register(loadShedding, {
      cohortKey: userOf,
      ...(target === 'spillway-front' ? { front: { cohortKey: userOf } } : {}),
      statusRoute: '/_load-shedding',
      // SPILLWAY_QUEUE=off: the same without the run queue, to see what the queue is worth; or its options as JSON.
      ...(process.env.SPILLWAY_QUEUE === 'off' ? { queue: false } : process.env.SPILLWAY_QUEUE === undefined ? {} : { queue: JSON.parse(process.env.SPILLWAY_QUEUE) as Record<string, number> }),
      // SPILLWAY_PACING: refusal pacing as JSON (`false`, or its options), to compare settings.
      ...(process.env.SPILLWAY_PACING === undefined ? {} : { pacing: JSON.parse(process.env.SPILLWAY_PACING) as false | Record<string, number> })
    })
  }

  const work = scenario === 'cpu'
    ? async () => { burnCpu(cpuIterations) }
    : database === undefined
      ? async () => { await pool.query() }
      : async () => { await database.query() }

  for (const route of ROUTES) {
    app.get(route.path, { config: { priority: route.priority } }, async () => {
      await work()
      return { ok: true }
    })
  }
  // No work and no query: a health check asks whether the process answers, not whether the database does.
  app.get('/health', { config: { priority: 'critical', pressureHandler: () => undefined } }, async () => ({ ok: true }))
  return app
}

/** A pool of `PG_POOL`'s size on `DATABASE_URL`, ended when the app closes. */
function openDatabase(app: FastifyInstance): PostgresPool {
  const database = new PostgresPool({ connectionString: DATABASE_URL, ...PG_POOL })
  app.addHook('onClose', async () => { await database.close() })
  return database
}
