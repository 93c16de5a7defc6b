import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sharedMeter, type ServerMeter, type ServerMeterOptions } from '../server-meter.js'

// Registered symbols: every Spillway plugin, whichever copy of this package it loaded, reads the
// same properties.
const kStartedAt = Symbol.for('spillway.request.startedAt')
const kUnmeasured = Symbol.for('spillway.request.unmeasured')

interface MeasuredRequest {
  [kStartedAt]?: number | undefined
  [kUnmeasured]?: boolean
}

/**
 * The shared meter of this Fastify server. The first Spillway plugin to call it installs the two
 * hooks that time and count every request; later plugins read the same figures, so a request is
 * measured once however many plugins are registered. Call it at registration, before your own
 * `onRequest` hook, so that the timing starts first.
 */
export function meterFastify(fastify: FastifyInstance, plugin: string, options?: ServerMeterOptions): ServerMeter {
  // The http.Server, not the Fastify instance: encapsulated contexts are different objects.
  const meter = sharedMeter(fastify.server, options)
  if (meter.claimMeasurement(plugin)) {
    const { inFlight } = meter
    const now = meter.now
    fastify.addHook('onRequest', function spillwayMeterStart(request, _reply, done) {
      ;(request as MeasuredRequest)[kStartedAt] = now()
      inFlight.acquire()
      done()
    })
    const end = (request: FastifyRequest): void => {
      const measured = request as MeasuredRequest
      const startedAt = measured[kStartedAt]
      // Cleared on the first end, so that an abort followed by a late response counts once.
      if (startedAt === undefined) return
      measured[kStartedAt] = undefined
      inFlight.release()
      if (measured[kUnmeasured] !== true) {
        const at = now()
        meter.recordLatency(at - startedAt, at)
      }
    }
    fastify.addHook('onResponse', function spillwayMeterEnd(request, _reply, done) {
      end(request)
      done()
    })
    // Fastify runs no onResponse for a request whose client went away first; without this hook
    // every client timeout would leave one request in flight forever. Its latency still counts:
    // leaving out the requests clients gave up on would make an overloaded server look healthy.
    fastify.addHook('onRequestAbort', function spillwayMeterAbort(request, done) {
      end(request)
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
  ;(request as MeasuredRequest)[kUnmeasured] = true
}

/** When the shared meter started timing this request, on the meter's clock. */
export function requestStartedAt(request: FastifyRequest): number | undefined {
  return (request as MeasuredRequest)[kStartedAt]
}
