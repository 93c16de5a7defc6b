import { performance } from 'node:perf_hooks'
import { RawClient } from './raw-client.js'

export interface HealthChecksOptions {
  host?: string
  port: number
  /** One check this often, ms, whatever the answers (a load balancer's checker). */
  intervalMs: number
  durationMs: number
  timeoutMs: number
  path?: string
}

export interface HealthChecksResult {
  sent: number
  /** 2xx within the timeout. */
  ok: number
  /** Latency of the 2xx answers, ms, from when the check was due. */
  latenciesMs: number[]
}

/**
 * One extra client asking `/health` every `intervalMs` beside the crowd, as a load balancer does:
 * a check still waiting when the next is due does not hold it back (the next goes on another
 * connection), so a server that stalls shows as unanswered checks, not as fewer checks.
 */
export async function runHealthChecks(options: HealthChecksOptions): Promise<HealthChecksResult> {
  const client = new RawClient(options.host ?? '127.0.0.1', options.port)
  const path = options.path ?? '/health'
  const result: HealthChecksResult = { sent: 0, ok: 0, latenciesMs: [] }
  const total = Math.floor(options.durationMs / options.intervalMs)
  let pending = 0
  let sendingDone = false
  let allSettled: () => void = () => {}
  const settled = new Promise<void>((resolve) => { allSettled = resolve })

  const check = (): void => {
    const dueAt = performance.now()
    result.sent++
    pending++
    client.getWithin(path, '', options.timeoutMs, (status) => {
      if (status >= 200 && status < 300) {
        result.ok++
        result.latenciesMs.push(performance.now() - dueAt)
      }
      if (--pending === 0 && sendingDone) allSettled()
    })
  }

  const start = performance.now()
  await new Promise<void>((resolve) => {
    // Due times from the start, not from the last tick, so that timer drift does not thin the checks.
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - start) / options.intervalMs) + 1)
      while (result.sent < due) check()
      if (result.sent >= total) return resolve()
      setTimeout(tick, Math.max(1, start + result.sent * options.intervalMs - performance.now()))
    }
    tick()
  })
  sendingDone = true
  if (pending > 0) await settled
  client.close()
  return result
}
