/**
 * The Fastify front door (`front` option): the server's request listener is wrapped at `onReady`,
 * so that a request to a known static route is decided before Fastify builds its request and
 * reply, runs the router and the hooks, and a refusal costs Node's parsing and a precomputed 503
 * only. Admitted requests go on to Fastify, whose hook lets them through (the protocol already
 * holds their slot); everything the front door cannot place goes on undecided.
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'
import { sendRawProblem } from '@spillway/latency-window/core'
import { FRONT_BYPASS, FRONT_DEFAULT_PRIORITY, type FrontRoutes } from './front-routes.js'
import type { LoadSheddingConfig } from './options.js'
import { headerOrDefaultRank } from './priority.js'
import type { SheddingMount, SheddingProtocol } from './request-protocol.js'

/** In front, a refusal is written with Node's API, and a request that waited goes on to Fastify's listener. */
const frontMount: SheddingMount<ServerResponse, RequestListener> = {
  send(response, _response, status, retryAfterSeconds, body, bodyLength) {
    sendRawProblem(response, status, retryAfterSeconds, body, bodyLength)
  },
  subject: (_response, request) => request,
  proceed: (listener, request, response) => { listener(request, response) }
}

export function installFrontDoor(
  server: Server, protocol: SheddingProtocol, routes: FrontRoutes, config: LoadSheddingConfig<never>,
  cohortKey: ((request: IncomingMessage) => string | undefined) | undefined
): void {
  const listeners = server.listeners('request') as RequestListener[]
  const fastifyListener = listeners[0]
  // Anything but Fastify's one listener (a custom serverFactory's own wiring): leave it to the hooks.
  if (listeners.length !== 1 || fastifyListener === undefined) return
  const { priorityHeader, defaultRank } = config
  const now = protocol.controller.now
  server.removeListener('request', fastifyListener)
  server.on('request', function spillwayFrontDoor(request: IncomingMessage, response: ServerResponse) {
    const entry = routes.find(request.method, request.url)
    if (entry === undefined || entry === FRONT_BYPASS) return fastifyListener(request, response)
    const rank = entry === FRONT_DEFAULT_PRIORITY ? headerOrDefaultRank(request.headers, priorityHeader, defaultRank) : entry
    const key = cohortKey === undefined ? undefined : cohortKey(request)
    if (protocol.handle(frontMount, request, response, rank, key, now(), response, fastifyListener)) fastifyListener(request, response)
  })
}
