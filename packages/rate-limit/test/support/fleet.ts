/**
 * Fixtures for the integration tests (root `test/rate-limit-*.test.ts`): real Fastify servers on
 * 127.0.0.1, a private redis-server for outage tests, and a concurrent HTTP burst. Lives in this
 * package so that `fastify` and `ioredis` resolve from here.
 */
import { request as httpRequest, Agent } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { spillwayRateLimit } from '../../src/plugin.js'
import type { RateLimitOptions } from '../../src/plugin.js'

export { Redis }
export { freePort, startRedisServer, stopRedisServer } from '../../../../test/support/redis-server.js'

export interface Teardown { teardown(fn: () => unknown): void }

/** A Fastify server with the plugin and a hello route, listening on an ephemeral loopback port. */
export async function startApp(t: Teardown, options: RateLimitOptions): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify()
  await app.register(spillwayRateLimit, options)
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 })

/** One GET; resolves with the status and headers (never rejects: a network error is status 0). */
export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined> }> {
  return await new Promise((resolve) => {
    const req = httpRequest(url, { agent, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', () => resolve({ status: 0, headers: {} }))
    req.end()
  })
}

/** `count` concurrent GETs spread round-robin over `urls`; the statuses. */
export async function burst(urls: string[], count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const requests: Array<Promise<{ status: number }>> = []
  for (let i = 0; i < count; i++) requests.push(get(urls[i % urls.length] as string, headers))
  return (await Promise.all(requests)).map((r) => r.status)
}

export function closeAgent(): void {
  agent.destroy()
}
