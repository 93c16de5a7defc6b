/**
 * @spillway/load-shedding in front of a real PostgreSQL: routes that query through a node-postgres
 * pool of 4 connections (each query a 20 ms `pg_sleep`, so capacity ≈ 200/s), driven well past it
 * over real HTTP by a bounded crowd of keep-alive clients for 2 s. The IO-bound overload as an
 * application meets it: the queue is pg's own, the event loop idles, and only the shedder's
 * concurrency limit can see the requests piling up.
 */
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import t from 'tap'
import { loadShedding } from '../packages/load-shedding/src/index.js'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'
import { DATABASE_URL, POSTGRES_REQUIRED, postgresAnswers, postgresTestOptions } from './support/postgres.js'

const opts = await postgresTestOptions()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('the PostgreSQL probe tells a live server from a closed port', async (t) => {
  t.equal(await postgresAnswers('postgresql://postgres@127.0.0.1:1/test'), false, 'nothing listens on port 1')
  if (POSTGRES_REQUIRED) t.equal(await postgresAnswers(DATABASE_URL), true, 'PostgreSQL answers at DATABASE_URL')
})

type Priority = 'high' | 'normal' | 'low'
interface Tally {
  sent: number
  ok: number
  shed: number
  /** 503s without a positive integer Retry-After. */
  shedWithoutRetryAfter: number
  other: number
  okLatenciesMs: number[]
}
const tally = (): Tally => ({ sent: 0, ok: 0, shed: 0, shedWithoutRetryAfter: 0, other: 0, okLatenciesMs: [] })

t.test('past a real pg.Pool\'s capacity: high is served, lower priorities get 503 with Retry-After, the pool drains, the app closes', opts, async (t) => {
  // Named, so that PostgreSQL itself can tell whether the app's connections are gone after close.
  const applicationName = `spillway-shed-test-${randomBytes(4).toString('hex')}`
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4, application_name: applicationName })
  pool.on('error', () => {})
  const app = Fastify()
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  app.addHook('onClose', async () => { await pool.end() })
  await app.register(loadShedding, {
    cohortKey: (request) => {
      const user = request.headers['x-user-id']
      return typeof user === 'string' ? user : undefined
    }
  })
  for (const priority of ['high', 'normal', 'low'] as const) {
    app.get(`/${priority}`, { config: { priority } }, async () => {
      await pool.query('SELECT pg_sleep($1)', [0.02])
      return { ok: true }
    })
  }
  app.get('/health', { config: { priority: 'critical' } }, async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }

  // 8 high, 24 normal and 24 low clients, each with one request in flight on its own keep-alive
  // connection: 56 in flight against 4 connections would queue ≈ 280 ms in pg unprotected.
  const crowd: Record<Priority, number> = { high: 8, normal: 24, low: 24 }
  const clients = crowd.high + crowd.normal + crowd.low
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients + 4 })
  t.teardown(() => agent.destroy())
  const tallies: Record<Priority | 'health', Tally> = { high: tally(), normal: tally(), low: tally(), health: tally() }

  const get = (path: string, user: number): Promise<{ status: number, retryAfter: string | undefined }> => new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent, headers: { 'x-user-id': `u${user}` }, timeout: 3000 }, (response) => {
      response.resume()
      response.on('end', () => {
        const header = response.headers['retry-after']
        resolve({ status: response.statusCode ?? 0, retryAfter: Array.isArray(header) ? header[0] : header })
      })
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve({ status: 0, retryAfter: undefined }))
  })
  const record = (count: Tally, startedAt: number, answer: { status: number, retryAfter: string | undefined }): void => {
    if (answer.status === 200) {
      count.ok++
      count.okLatenciesMs.push(performance.now() - startedAt)
    } else if (answer.status === 503) {
      count.shed++
      if (!/^[1-9]\d*$/.test(answer.retryAfter ?? '')) count.shedWithoutRetryAfter++
    } else {
      count.other++
    }
  }

  const deadline = performance.now() + 2000
  let peakWaiting = 0
  const client = async (priority: Priority, user: number): Promise<void> => {
    const count = tallies[priority]
    while (performance.now() < deadline) {
      const startedAt = performance.now()
      count.sent++
      const answer = await get(`/${priority}`, user)
      record(count, startedAt, answer)
      peakWaiting = Math.max(peakWaiting, pool.waitingCount)
      // A refused client comes back after 20 ms rather than honouring Retry-After (an impatient
      // client), but not at once: a spinning client would only measure this process's CPU.
      if (answer.status === 503) await sleep(20)
    }
  }
  const health = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const startedAt = performance.now()
      tallies.health.sent++
      record(tallies.health, startedAt, await get('/health', 0))
      await sleep(100)
    }
  }
  let user = 0
  const running: Array<Promise<void>> = [health()]
  for (const priority of ['high', 'normal', 'low'] as const) {
    for (let i = 0; i < crowd[priority]; i++) running.push(client(priority, user++))
  }
  await Promise.all(running)

  const { high, normal, low } = tallies
  const summary = Object.fromEntries(Object.entries(tallies).map(([name, c]) => [name, { sent: c.sent, ok: c.ok, shed: c.shed, other: c.other }]))
  t.comment(JSON.stringify({ ...summary, peakWaiting, shed: app.loadShedding.state.shed }))

  t.equal(high.other + normal.other + low.other, 0, 'every request answered 200 or 503: no timeout, no error')
  t.ok(high.ok / high.sent >= 0.9, `high served: ${high.ok} of ${high.sent}`)
  t.ok(low.shed / low.sent >= 0.3, `low refused once the pool was full: ${low.shed} of ${low.sent}`)
  t.ok(normal.shed + low.shed > 0 && high.shed / high.sent < (normal.shed + low.shed) / (normal.sent + low.sent),
    'high refused less often than normal and low')
  t.ok(low.shed / low.sent >= normal.shed / normal.sent, 'low refused at least as often as normal')
  // Unprotected, the pool serves the crowd in arrival order: high gets its share of the clients (1 in 7).
  const served = high.ok + normal.ok + low.ok
  t.ok(high.ok / served >= (2 * crowd.high) / clients, `the pool's capacity went to high first: ${high.ok} of ${served} served`)
  t.equal(high.shedWithoutRetryAfter + normal.shedWithoutRetryAfter + low.shedWithoutRetryAfter, 0, 'every 503 carries Retry-After')
  const okLatencies = [...high.okLatenciesMs].sort((a, b) => a - b)
  t.ok((okLatencies[Math.floor(okLatencies.length / 2)] ?? 0) >= 20, 'a served request waited for its real 20 ms query')
  t.ok(peakWaiting <= clients / 2, `the shedder kept most of the crowd out of pg's queue: peak ${peakWaiting} waiting, where all but 4 of ${clients} would wait unprotected`)
  t.equal(tallies.health.ok, tallies.health.sent, 'critical health checks all answered')

  t.equal(pool.waitingCount, 0, 'no request left waiting for a connection')
  t.equal(pool.idleCount, pool.totalCount, 'every connection back in the pool')

  const closing = app.close().then(() => 'closed' as const)
  t.equal(await Promise.race([closing, sleep(5000).then(() => 'hung' as const)]), 'closed', 'the app closes within 5 s')
  closed = true
  t.equal(pool.totalCount, 0, 'the pool ended with the app')
  // PostgreSQL ends a backend shortly after its client leaves: ask it, briefly, until none is left.
  const observer = new pg.Client({ connectionString: DATABASE_URL })
  observer.on('error', () => {})
  await observer.connect()
  t.teardown(() => observer.end())
  let left = -1
  for (let i = 0; i < 20 && left !== 0; i++) {
    const { rows } = await observer.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName])
    left = rows[0]?.n ?? -1
    if (left !== 0) await sleep(50)
  }
  t.equal(left, 0, 'PostgreSQL sees none of the app\'s connections after close')
})
