import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'
import t from 'tap'
import { loadShedding } from '../packages/load-shedding/src/index.js'

/**
 * A real overload over real sockets: a route waiting on a pool of 4 connections held 20 ms each
 * (capacity ≈ 200/s) offered ≈ 3× that, open loop, for 2 s. The IO-bound case, because it does not
 * depend on how much CPU the machine lends the test: the event loop stays idle while requests
 * queue on the pool, and only the concurrency limit and the threshold can see it.
 */
t.test('under a real overload, low is shed before high and high keeps being served', async (t) => {
  let free = 4
  const waiters: Array<() => void> = []
  const query = async (): Promise<void> => {
    if (free > 0) free--
    else await new Promise<void>((resolve) => waiters.push(resolve))
    await new Promise((resolve) => setTimeout(resolve, 20))
    const next = waiters.shift()
    if (next !== undefined) next()
    else free++
  }

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { bypass: ['/health'] })
  app.get('/high', { config: { priority: 'high' } }, async () => { await query(); return 'ok' })
  app.get('/low', { config: { priority: 'low' } }, async () => { await query(); return 'ok' })
  app.get('/health', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 })
  t.teardown(() => agent.destroy())
  type Count = { sent: number, ok: number, shed: number, other: number }
  const counts: { high: Count, low: Count, health: Count } = {
    high: { sent: 0, ok: 0, shed: 0, other: 0 },
    low: { sent: 0, ok: 0, shed: 0, other: 0 },
    health: { sent: 0, ok: 0, shed: 0, other: 0 }
  }
  const pending: Array<Promise<void>> = []
  const send = (kind: keyof typeof counts): void => {
    const count = counts[kind]
    count.sent++
    pending.push(new Promise((resolve) => {
      const request = http.get({ host: '127.0.0.1', port, path: `/${kind}`, agent, timeout: 2000 }, (response) => {
        response.resume()
        response.on('end', () => {
          if (response.statusCode === 200) count.ok++
          else if (response.statusCode === 503) count.shed++
          else count.other++
          resolve()
        })
      })
      request.on('timeout', () => request.destroy())
      request.on('error', () => { count.other++; resolve() })
    }))
  }

  // 600/s for 2 s: every 10 ms, 1 high and 5 low; a health check every 100 ms.
  const start = performance.now()
  let tick = 0
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.floor((performance.now() - start) / 10)
      while (tick < due && tick < 200) {
        send('high')
        for (let i = 0; i < 5; i++) send('low')
        if (tick % 10 === 0) send('health')
        tick++
      }
      if (tick >= 200) { clearInterval(timer); resolve() }
    }, 5)
  })
  await Promise.all(pending)

  const { high, low, health } = counts
  t.comment(JSON.stringify(counts), JSON.stringify(app.loadShedding.state.shed))
  t.ok(low.shed > 0, 'the overload was real: low was shed')
  t.ok(low.shed / low.sent > 0.4, `most low shed (${low.shed}/${low.sent})`)
  t.ok(high.ok / high.sent >= 0.95, `high served (${high.ok}/${high.sent})`)
  t.ok(high.shed / high.sent < low.shed / low.sent / 4, 'high shed far less often than low')
  t.equal(health.ok, health.sent, 'health checks bypass shedding')
  t.equal(high.other + low.other, 0, 'no timeouts or errors')
})
