import type { ServerMeter } from '@spillway/latency-window'
import type { LoadReading } from './level-controller.js'

/** What the level controller judges, read from the shared meter of one server (any framework). */
export function meterReading(meter: ServerMeter, percentile: number): LoadReading {
  const samples = meter.latency.count
  const loop = meter.eventLoop.current
  return {
    latencyMs: samples > 0 ? meter.latency.quantile(percentile) : 0,
    samples,
    eventLoopDelayMs: loop.delayP99Ms,
    utilization: loop.utilization,
    pressure: meter.pressureSource === undefined ? undefined : meter.pressure
  }
}
