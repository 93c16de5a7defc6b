import type { LatencyWindow, ServerMeter } from '@spillway/latency-window/core'
import type { LoadReading } from './level-controller.js'
import type { DegradationConfig } from './options.js'

/**
 * What the level controller judges, read from the shared meter of one server (any framework).
 * `latency` is the window of the shape this plugin asked for (`meter.latencyWindow(shape)`).
 *
 * The meter is swept first, so that a response that turned into a stream since its last sweep
 * reads neither as in flight nor as a slow request. The event-loop figures are the lower of the
 * last two sampler intervals': one stall (a garbage collection, a moment of stolen CPU) makes one
 * interval's p99, a saturated loop makes every interval's, so one interval's figure is not a trend.
 * A sustained overload reaches the controller one interval later for it.
 */
export function meterReading(meter: ServerMeter, latency: LatencyWindow, percentile: number): LoadReading {
  meter.sweep()
  const samples = latency.count
  const { current, previous } = meter.eventLoop
  const inFlight = meter.inFlightLatency(percentile)
  return {
    latencyMs: samples > 0 ? latency.quantile(percentile) : 0,
    samples,
    inFlightAgeMs: inFlight.ageMs,
    inFlightSamples: inFlight.samples,
    eventLoopDelayMs: Math.min(current.delayP99Ms, previous.delayP99Ms),
    utilization: Math.min(current.utilization, previous.utilization),
    pressure: meter.pressureSource === undefined ? undefined : meter.pressure
  }
}

/** What a mount reads before it has met its meter (Express finds it at the first request): it holds the level. */
export const IDLE_READING: Readonly<LoadReading> = Object.freeze({ latencyMs: 0, samples: 0, eventLoopDelayMs: 0, utilization: 0, pressure: undefined })

/**
 * The reading of `meter` over the window this configuration asked for, even when another plugin
 * created the meter with another; `IDLE_READING` while the mount has no meter yet.
 */
export function readMeter(meter: ServerMeter | undefined, config: Pick<DegradationConfig, 'latencyWindow' | 'percentile'>): LoadReading {
  if (meter === undefined) return IDLE_READING
  return meterReading(meter, meter.latencyWindow(config.latencyWindow), config.percentile)
}
