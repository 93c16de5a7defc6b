import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'

type RouteHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/**
 * Where each Spillway hook goes among a route's hooks, whatever order the plugins were registered
 * in: the long-lived marker first (the shedder must know a request holds no slot), then the load
 * shedder (a shed request spends no tokens), then the rate limiter (whose refusal gives the
 * shedder's slot back, `markRefused`), then the route's own hooks, and degradation's gate last.
 */
export const ROUTE_HOOK_ORDER = { longLived: 0, loadShedding: 1, rateLimit: 2, last: Number.POSITIVE_INFINITY } as const

const kOrder = Symbol('spillway.routeHookOrder')
type Ordered = { [kOrder]?: number }

/**
 * Adds `hook` to one route's own `onRequest` or `preHandler` list, set up in `onRoute` (so that
 * routes without the setting pay nothing), at its place in `ROUTE_HOOK_ORDER`: before the route's
 * own hooks (a protection whose refusal should not pay for them) and after the Spillway hooks
 * that come before it, or `last`, after everything.
 */
export function addRouteHook(route: RouteOptions, name: 'onRequest' | 'preHandler', hook: RouteHook, order: number): void {
  const existing = route[name] as unknown
  const hooks = existing === undefined ? [] : Array.isArray(existing) ? [...existing as unknown[]] : [existing]
  ;(hook as Ordered)[kOrder] = order
  let at = order === ROUTE_HOOK_ORDER.last ? hooks.length : 0
  while (at < hooks.length && ((hooks[at] as Ordered | null)?.[kOrder] ?? Number.POSITIVE_INFINITY) <= order) at++
  hooks.splice(at, 0, hook)
  ;(route as unknown as Record<string, unknown>)[name] = hooks
}
