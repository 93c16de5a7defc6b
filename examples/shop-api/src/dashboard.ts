import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { LiveState } from './live-state.js'

export const DASHBOARD_PATH = '/spillway'
export const DASHBOARD_EVENTS_PATH = '/spillway/events'
export const DASHBOARD_STATE_PATH = '/spillway/state'

const page = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8')

/**
 * The live dashboard: a static page that opens a server-sent event stream and redraws on every
 * snapshot (one per second), and the latest snapshot as JSON for scripts (the demo's live view).
 * Routes are exempt from shedding by the caller's `bypass` list: an operator must be able to watch
 * an overload.
 */
export function registerDashboard(app: FastifyInstance, live: LiveState): void {
  const streams = new Set<() => void>()
  // preClose, not onClose: open streams would otherwise keep the server from closing.
  app.addHook('preClose', async () => { for (const end of streams) end() })
  const config = { rateLimit: false as const }
  app.get(DASHBOARD_PATH, { config }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))
  app.get(DASHBOARD_STATE_PATH, { config }, async () => live.latest)
  app.get(DASHBOARD_EVENTS_PATH, { config }, (request, reply) => {
    reply.hijack()
    const response = reply.raw
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive'
    })
    const send = (snapshot: unknown): void => { response.write(`data: ${JSON.stringify(snapshot)}\n\n`) }
    send(live.latest)
    const unsubscribe = live.subscribe(send)
    const end = (): void => {
      unsubscribe()
      streams.delete(end)
      if (!response.writableEnded) response.end()
    }
    streams.add(end)
    request.raw.once('close', end)
  })
}
