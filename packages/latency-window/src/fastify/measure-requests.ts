import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sharedMeter, type ServerMeter, type ServerMeterOptions } from '../server-meter.js'

// Registered symbols: every Spillway plugin, whichever copy of this package it loaded, reads the
// same properties. They live on the raw request, which the response's 'close' listener reaches
// (`response.req`) without a closure per request.
const kStartedAt = Symbol.for('spillway.request.startedAt')
const kUnmeasured = Symbol.for('spillway.request.unmeasured')
const kReply = Symbol.for('spillway.request.reply')

interface MeasuredMessage extends IncomingMessage {
  [kStartedAt]?: number | undefined
  [kUnmeasured]?: boolean
  [kReply]?: FastifyReply
}

/**
 * The shared meter of this Fastify server. The first Spillway plugin to call it installs the hook
 * that times and counts every request; later plugins read the same figures, so a request is
 * measured once however many plugins are registered. Call it at registration, before your own
 * `onRequest` hook, so that the timing starts first. The same hook links each request to its reply
 * (`replyOf`), so that a plugin that must write a header from request-side code (degradation's
 * `request.feature()`) needs no hook of its own.
 *
 * A request ends on its raw response's 'close', which Node emits both after a complete response
 * and when the client goes away first. One shared listener replaces Fastify's `onResponse` and
 * `onRequestAbort` hooks: each of those makes Fastify set up listeners and a closure or two for
 * every request, which cost more than the whole measurement (counted with callgrind: see the
 * degradation package's `bench:instructions`).
 */
export function meterFastify(fastify: FastifyInstance, plugin: string, options?: ServerMeterOptions): ServerMeter {
  // The http.Server, not the Fastify instance: encapsulated contexts are different objects.
  const meter = sharedMeter(fastify.server, options)
  if (meter.claimMeasurement(plugin)) {
    const { inFlight } = meter
    const now = meter.now
    const end = function spillwayMeterEnd(this: ServerResponse): void {
      const request = this.req as MeasuredMessage
      const startedAt = request[kStartedAt]
      if (startedAt === undefined) return
      request[kStartedAt] = undefined
      inFlight.release()
      // A request whose client gave up still counts: leaving those out would make an overloaded
      // server look healthy.
      if (request[kUnmeasured] !== true) {
        const at = now()
        meter.recordLatency(at - startedAt, at)
      }
    }
    fastify.addHook('onRequest', function spillwayMeterStart(request, reply, done) {
      const raw = request.raw as MeasuredMessage
      raw[kStartedAt] = now()
      raw[kReply] = reply
      inFlight.acquire()
      reply.raw.on('close', end)
      done()
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
  ;(request.raw as MeasuredMessage)[kUnmeasured] = true
}

/** When the shared meter started timing this request, on the meter's clock. */
export function requestStartedAt(request: FastifyRequest): number | undefined {
  return (request.raw as MeasuredMessage)[kStartedAt]
}

/**
 * The reply of this request, from the shared meter's `onRequest` hook on: undefined before it ran
 * (in an `onRequest` hook registered before the first Spillway plugin).
 */
export function replyOf(request: FastifyRequest): FastifyReply | undefined {
  return (request.raw as MeasuredMessage)[kReply]
}
