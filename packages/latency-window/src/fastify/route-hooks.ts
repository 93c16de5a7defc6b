import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'

type RouteHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/**
 * Adds `hook` to one route's own `onRequest` or `preHandler` list, set up in `onRoute` (so that
 * routes without the setting pay nothing): `first` runs it before the route's existing hooks (a
 * protection whose refusal should not pay for them), `last` after them.
 */
export function addRouteHook(route: RouteOptions, name: 'onRequest' | 'preHandler', hook: RouteHook, position: 'first' | 'last'): void {
  const existing = route[name] as unknown
  const hooks = existing === undefined ? [] : Array.isArray(existing) ? existing as unknown[] : [existing]
  ;(route as unknown as Record<string, unknown>)[name] = position === 'first' ? [hook, ...hooks] : [...hooks, hook]
}
