import type { LatencyWindow, ServerMeter } from '@spillway/latency-window/core'
import type { LoadReading } from './level-controller.js'
import type { DegradationConfig } from './options.js'

/**
 * What the level controller judges, read from the shared meter of one server (any framework).
 * `latency` is the window of the shape this plugin asked for (`meter.latencyWindow(shape)`).
 */
export function meterReading(meter: ServerMeter, latency: LatencyWindow, percentile: number): LoadReading {
  const samples = latency.count
  const loop = meter.eventLoop.current
  return {
    latencyMs: samples > 0 ? latency.quantile(percentile) : 0,
    samples,
    eventLoopDelayMs: loop.delayP99Ms,
    utilization: loop.utilization,
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
