/**
 * The shared meter's Fastify mount: one `onRequest` hook, installed by the first Spillway plugin
 * on a server, hands each request to the framework-free timing (`../request-timing.ts`). The
 * accessors take Fastify's request and read its raw one.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { SpillwayOptionsError, describeValue, type OptionsErrorFactory } from '../option-checks.js'
import * as timing from '../request-timing.js'
import { addRouteHook, ROUTE_HOOK_ORDER } from './route-hooks.js'
import { sharedMeter, type ServerMeter, type ServerMeterOptions } from '../server-meter.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `true`: every request to this route is long-lived (long polling, a stream whose headers come
     * late): it never counts in flight nor in latency, and holds no load-shedding slot.
     */
    longLived?: boolean
  }
}

// The reply of each request, on its raw request: Fastify's own request object is created per
// request with a fixed shape, the raw one is Node's, whose added properties stay cheap.
const kReply = Symbol.for('spillway.request.reply')
interface RepliedMessage { [kReply]?: FastifyReply }

const coreError: OptionsErrorFactory = (message) => new SpillwayOptionsError(message)

/**
 * The shared meter of this Fastify server. The first Spillway plugin to call it installs the hook
 * that times and counts every request; later plugins read the same figures, so a request is
 * measured once however many plugins are registered. Call it at registration, before your own
 * `onRequest` hook, so that the timing starts first. A request ends on its raw response's 'close',
 * which Node emits both after a complete response and when the client goes away first: one shared
 * listener instead of Fastify's `onResponse` and `onRequestAbort` hooks, each of which makes
 * Fastify set up listeners and closures for every request.
 */
export function meterFastify(
  fastify: FastifyInstance, plugin: string, options?: ServerMeterOptions, fail: OptionsErrorFactory = coreError
): ServerMeter {
  // The http.Server, not the Fastify instance: encapsulated contexts are different objects.
  const meter = sharedMeter(fastify.server, options, fail)
  if (meter.claimMeasurement(plugin)) {
    fastify.addHook('onRequest', function spillwayMeterStart(request, reply, done) {
      ;(request.raw as RepliedMessage)[kReply] = reply
      timing.startTiming(meter, request.raw, reply.raw)
      done()
    })
    // A long-lived route gets a hook of its own, read from its config once: the meter's hook above
    // reads no route config per request.
    const markLongLived: onRequestHookHandler = function spillwayLongLived(request, reply, done) {
      timing.markLongLived(request.raw, reply.raw, meter)
      done()
    }
    fastify.addHook('onRoute', function spillwayLongLivedRoute(route) {
      const longLived = route.config?.longLived
      if (longLived === undefined || longLived === false) return
      if (longLived !== true) {
        throw fail(`route ${String(route.method)} ${route.url}: config.longLived must be true or false, got ${describeValue(longLived)}`)
      }
      addRouteHook(route, 'onRequest', markLongLived, ROUTE_HOOK_ORDER.longLived)
    })
    fastify.addHook('onClose', function spillwayMeterClose(_instance, done) {
      meter.eventLoop.release()
      done()
    })
    meter.eventLoop.retain()
  }
  return meter
}

/**
 * Keeps this request's latency out of the window (it still counts in flight until it ends): for
 * requests refused in a few microseconds, whose latency says nothing about the server's.
 */
export function excludeFromLatency(request: FastifyRequest): void {
  timing.excludeFromLatency(request.raw)
}

/** When the shared meter started timing this request, on the meter's clock. */
export function requestStartedAt(request: FastifyRequest): number | undefined {
  return timing.requestStartedAt(request.raw)
}

/**
 * The reply of this request, from the shared meter's `onRequest` hook on: undefined before it ran
 * (in an `onRequest` hook registered before the first Spillway plugin).
 */
export function replyOf(request: FastifyRequest): FastifyReply | undefined {
  return (request.raw as RepliedMessage)[kReply]
}
