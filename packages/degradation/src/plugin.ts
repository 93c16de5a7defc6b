/**
 * The Fastify mount of degradation: `request.feature()` and `request.degrade()` as request
 * decorators, the gate of each route with `config.feature` as an `onRequest` hook, the status and
 * admin routes. What a request goes through is the framework-free `DegradationProtocol`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { PROBLEM_CONTENT_TYPE, optionMessage } from '@spillway/latency-window/core'
import { addRouteHook, meterFastify, replyOf, ROUTE_HOOK_ORDER } from '@spillway/latency-window/fastify'
import { registerAdmin } from './admin-route.js'
import type { Degradation } from './degradation.js'
import { DegradationOptionsError, failOption } from './errors.js'
import type { FeatureDeclaration as CoreFeatureDeclaration, FeatureFallback as CoreFeatureFallback } from './features.js'
import { readMeter } from './meter-reading.js'
import { normalizeDegradationOptions, type DegradationOptions as CoreDegradationOptions } from './options.js'
import { DegradationProtocol, type CallFallback, type DegradationMount } from './request-protocol.js'
import { ServerDegradation } from './server-degradation.js'

export { DEGRADED_HEADER } from './header.js'
export type { DegradationAdminOptions } from './options.js'
export type { CallFallback } from './request-protocol.js'

/** What a feature answers while it is off: a value, or a function of the request (and, on a gated route, the reply). */
export type FeatureFallback = CoreFeatureFallback<FastifyRequest, FastifyReply>
export type FeatureDeclaration = CoreFeatureDeclaration<FastifyRequest, FastifyReply>
export type DegradationOptions = CoreDegradationOptions<FastifyRequest, FastifyReply>

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Whether the declared feature is on, in O(1). A `false` answer adds the feature to the
     * `Spillway-Degraded` header and counts one fallback served. Throws for an undeclared name.
     */
    feature(name: string): boolean
    /**
     * Runs `full()` while the feature is on; otherwise answers `fallback` (or the declared one),
     * calling it if it is a function. A fallback that throws is logged and answered as `null`.
     */
    degrade<T>(name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>): Promise<T | null>
  }
  interface FastifyInstance {
    /** Level, features, overrides and events of load-driven degradation. */
    degradation: Degradation
  }
  interface FastifyContextConfig {
    /** Gate the whole route on this feature: while it is off the route answers its fallback. `false` opts out. */
    feature?: string | false
  }
}

// The gate's answers go through Fastify's reply, so that the application's onSend hooks and
// serializers see them as any other answer.
const fastifyMount: DegradationMount<FastifyRequest, FastifyReply> = {
  raw: (request) => request.raw,
  // Written when a fallback is served, on the reply the shared meter links to the request, not in
  // an onSend hook: an onSend hook makes Fastify run a hook chain on every response, degraded or
  // not (counted: `bench:instructions`).
  setHeader: (request, name, value) => {
    void replyOf(request)?.header(name, value)
  },
  sent: (reply) => reply.sent,
  send: (reply, value) => {
    void reply.send(value)
  },
  unavailable: (reply, retryAfterSeconds, body) => {
    void reply.code(503).header('retry-after', String(retryAfterSeconds)).type(PROBLEM_CONTENT_TYPE).send(body)
  },
  warn: (request, payload, message) => request.log.warn(payload, message)
}

const spillwayDegradation: FastifyPluginAsync<DegradationOptions> = async function spillwayDegradation(fastify, input) {
  const config = normalizeDegradationOptions(input)

  // Registered before our own hooks so that timing starts first; with the load shedder also
  // registered, whichever comes first measures and both read the same figures.
  const meter = meterFastify(fastify, 'degradation', config.meter, failOption)
  // The window this plugin was configured with, created now so that it is fed from the first request.
  meter.latencyWindow(config.latencyWindow)
  const running = new ServerDegradation(config, () => readMeter(meter, config), fastify.log)
  const protocol = new DegradationProtocol(running.state, config, fastifyMount)
  fastify.decorate('degradation', running.state)

  fastify.decorateRequest('feature', function feature(this: FastifyRequest, name: string): boolean {
    return protocol.feature(this, name)
  })
  fastify.decorateRequest('degrade', function degrade<T>(
    this: FastifyRequest, name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>
  ): Promise<T | null> {
    return protocol.degrade(this, name, full, fallback, arguments.length >= 3)
  })

  fastify.addHook('onRoute', function spillwayDegradationRoute(routeOptions) {
    const name = routeOptions.config?.feature
    if (name === undefined || name === false) return
    const index = protocol.indexOf(name)
    if (index < 0) {
      throw new DegradationOptionsError(optionMessage(`config.feature of ${routeOptions.method} ${routeOptions.url}`, name, 'false or a declared feature name'))
    }
    const gate: onRequestHookHandler = protocol.gate(index)
    addRouteHook(routeOptions, 'onRequest', gate, ROUTE_HOOK_ORDER.last)
  })

  if (config.statusRoute !== false) {
    fastify.get(config.statusRoute, { config: { feature: false } }, async () => running.state.status())
  }
  if (config.admin !== undefined) registerAdmin(fastify, running.state, config.admin)

  fastify.addHook('onClose', function spillwayDegradationClose(_instance, done) {
    running.stop()
    done()
  })
  running.start()
}

/** Load-driven graceful degradation: load becomes a level, the level turns features off. */
export const degradation = fp(spillwayDegradation, { name: '@spillway/degradation', fastify: '5.x' })
export { spillwayDegradation }
export default degradation
