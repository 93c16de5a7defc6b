/**
 * A six-second look at @spillway/latency-window on this machine: simulated requests with real
 * timers, then a CPU hog that blocks the event loop, then calm again. Every half second it prints
 * what the window and the event-loop signals measured. Stand-in for the full demo (issue 6).
 * Run: pnpm demo
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventLoopSignals, InFlight, LatencyWindow } from '@spillway/latency-window'

const PHASES = [
  { name: 'steady', ms: 2000, hogMs: 0 },
  { name: 'cpu hog', ms: 2000, hogMs: 40 },
  { name: 'calm', ms: 2000, hogMs: 0 }
] as const

const latency = new LatencyWindow({ windowMs: 1000, slices: 10 })
const eventLoop = new EventLoopSignals({ intervalMs: 500, resolutionMs: 5 })
const inFlight = new InFlight()
eventLoop.retain()

/** One simulated request: waits on a "database" for 5–30 ms of timers, then records its latency. */
async function request(): Promise<void> {
  const start = performance.now()
  inFlight.acquire()
  await sleep(5 + Math.random() * 25)
  inFlight.release()
  const end = performance.now()
  latency.record(end - start, end)
}

const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(7)
console.log('phase      t(s)  req/s    p50 ms   p99 ms   max ms  in-flight  loop p99 ms  loop util')
const started = performance.now()
for (const phase of PHASES) {
  const phaseEnd = performance.now() + phase.ms
  let nextReport = performance.now() + 500
  let nextHog = performance.now() + 100
  while (performance.now() < phaseEnd) {
    for (let i = 0; i < 4; i++) void request()
    if (phase.hogMs > 0 && performance.now() >= nextHog) {
      const until = performance.now() + phase.hogMs
      while (performance.now() < until) { /* a handler doing synchronous work */ }
      nextHog += 100
    }
    await sleep(10)
    if (performance.now() >= nextReport) {
      nextReport += 500
      const s = latency.snapshot()
      const loop = eventLoop.current
      console.log(`${phase.name.padEnd(9)} ${fmt((performance.now() - started) / 1000)} ${fmt(s.ratePerSecond, 0)} ` +
        `${fmt(s.p50, 2)}  ${fmt(s.p99, 2)}  ${fmt(s.max, 2)}  ${String(inFlight.current).padStart(9)}  ` +
        `${fmt(loop.delayP99Ms, 2)}      ${fmt(loop.utilization, 2)}`)
    }
  }
}
eventLoop.release()
await sleep(50)
console.log(`\nwindow memory: ${latency.byteLength} bytes; invalid samples: ${latency.invalidCount}; clamped: ${latency.clampedCount}`)
console.log('In the cpu hog phase the loop delay and utilization jump within one interval: the signals a load')
console.log('shedder reads. Once the hog stops, the 1 s window forgets the slow samples within a second.')
