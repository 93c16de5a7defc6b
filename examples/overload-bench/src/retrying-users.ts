import { performance } from 'node:perf_hooks'
import { mixPicker, seededRandom, type RequestKind } from './open-loop.js'
import { RawClient } from './raw-client.js'

export interface RetryingUsersOptions {
  host?: string
  port: number
  /** New users per second (open loop: whatever the server does). */
  arrivalsPerSecond: number
  durationMs: number
  /** An attempt gives up this long after it was sent, ms. Default 1000. */
  timeoutMs?: number
  /** Attempts after the first, each sent at once on a refusal (503, 429) or a timeout. Default 3. */
  retries?: number
  mix: readonly RequestKind[]
  /** Width of the goodput timeline's buckets, ms. Default 100. */
  bucketMs?: number
  seed?: number
}

export interface RetryingUsersResult {
  users: number
  /** Users whose request got a 2xx within its attempts. */
  served: number
  /** Attempts sent in all (first tries and retries). */
  attempts: number
  /** 2xx per bucket, by when they were answered, from the start. */
  okTimeline: number[]
  /** Attempts sent per bucket (arrivals and retries). */
  sentTimeline: number[]
  bucketMs: number
}

/**
 * Users arriving at a fixed rate, each with one request that it sends again at once, up to
 * `retries` more times, when it is refused or times out: a naive SDK. The retries are what keep an
 * overload alive after its cause is gone (a metastable failure, Bronson et al., HotOS 2021): every
 * refusal or timeout adds an attempt, so the offered load rises with the failures it causes.
 */
export async function runRetryingUsers(options: RetryingUsersOptions): Promise<RetryingUsersResult> {
  const host = options.host ?? '127.0.0.1'
  const timeoutMs = options.timeoutMs ?? 1000
  const retries = options.retries ?? 3
  const bucketMs = options.bucketMs ?? 100
  const random = seededRandom(options.seed ?? 1)
  const pick = mixPicker(options.mix, random)
  const buckets = Math.ceil((options.durationMs + (retries + 1) * timeoutMs) / bucketMs)
  const result: RetryingUsersResult = {
    users: 0, served: 0, attempts: 0, okTimeline: new Array<number>(buckets).fill(0), sentTimeline: new Array<number>(buckets).fill(0), bucketMs
  }
  const client = new RawClient(host, options.port)
  const start = performance.now()
  const bucketOf = (at: number): number => Math.min(buckets - 1, Math.floor((at - start) / bucketMs))
  let pending = 0
  let sending = true
  let allSettled: () => void = () => {}
  const settled = new Promise<void>((resolve) => { allSettled = resolve })

  function attempt(kind: RequestKind, user: number, left: number): void {
    result.attempts++
    result.sentTimeline[bucketOf(performance.now())]!++
    client.getWithin(kind.path, `x-user-id: u${user}\r\n`, timeoutMs, (status) => {
      if (status >= 200 && status < 300) {
        result.served++
        result.okTimeline[bucketOf(performance.now())]!++
      } else if (left > 0 && (status === 503 || status === 429 || status === 0)) {
        return attempt(kind, user, left - 1)
      }
      if (--pending === 0 && !sending) allSettled()
    })
  }

  const intervalMs = 1000 / options.arrivalsPerSecond
  const total = Math.round(options.durationMs / intervalMs)
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - start) / intervalMs) + 1)
      while (result.users < due) {
        result.users++
        pending++
        attempt(pick(), Math.floor(random() * 10_000), retries)
      }
      if (result.users >= total) return resolve()
      setTimeout(tick, 1)
    }
    tick()
  })
  sending = false
  if (pending > 0) await settled
  client.close()
  return result
}
