import type { LatencyWindow, ServerMeter } from '@spillway/latency-window/core'
import type { LoadReading } from './level-controller.js'

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
