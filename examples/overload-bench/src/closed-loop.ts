import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { mixPicker, seededRandom, type RequestKind } from './open-loop.js'
import { RawClient, type Connection } from './raw-client.js'

/**
 * How a client behaves at its timeout: `reconnect` gives up, closes the connection and starts again
 * on a new one (a browser, an SDK with a timeout); `wait` keeps waiting on the same connection
 * (wrk), so that its next request goes out only when the late answer arrives.
 */
export type TimeoutBehaviour = 'reconnect' | 'wait'

export interface ClosedLoopOptions {
  host?: string
  port: number
  /** Concurrent clients, each with one request in flight at a time. */
  clients: number
  /**
   * The clients start over this long, ms: thousands of SYNs at once overflow the server's accept
   * backlog (511 by default, and never more than net.core.somaxconn), and a dropped SYN is retried
   * only a second later, past the client's timeout: that would measure the kernel, not the server.
   */
  rampMs: number
  /** How long the crowd runs after the ramp, ms; only this part is counted. */
  durationMs: number
  /** Called when the counted part starts (the ramp is over), to line other events up with it. */
  onCountStart?: () => void
  /** Width of `okTimeline`'s buckets, ms. Default 100. */
  bucketMs?: number
  /** A client's timeout, ms. Default 1000. */
  timeoutMs?: number
  onTimeout?: TimeoutBehaviour
  mix: readonly RequestKind[]
  /** Distinct users, each request from one at random. Default 10 000. */
  users?: number
  /** The request header naming the user (`u<n>`): the cohort key, or an app's API key. Default `x-user-id`. */
  userHeader?: string
  seed?: number
}

export interface ClosedKindResult {
  sent: number
  /** 2xx answered within the timeout. */
  ok: number
  /** 503 or 429, answered. */
  refused: number
  /** Given up at the timeout (or answered after it, with `wait`). */
  timedOut: number
  errors: number
  latenciesMs: number[]
}

export interface ClosedLoopResult {
  clients: number
  onTimeout: TimeoutBehaviour
  durationMs: number
  byKind: Record<string, ClosedKindResult>
  /** New connections opened in the counted part (a reconnect after a timeout or a close). */
  connects: number
  /** 2xx answered within the timeout per `bucketMs`, by when they were answered, from the counted part's start. */
  okTimeline: number[]
  bucketMs: number
  /**
   * This process's own event-loop delay, p99, ms: a crowd of thousands of clients can saturate the
   * generator, whose timers then fire late and read as server timeouts. Figures from a run where it
   * approaches the timeout measure the generator, not the server.
   */
  generatorLagP99Ms: number
}

/**
 * A closed-loop crowd: every client sends its next request as soon as it gets any answer, a 503
 * included (no backoff, `Retry-After` ignored, as a naive SDK or an impatient user does). Unlike the
 * open loop, the offered load here is whatever the server's answers let through: a server that
 * refuses fast gets asked again at once.
 */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const host = options.host ?? '127.0.0.1'
  const timeoutMs = options.timeoutMs ?? 1000
  const onTimeout = options.onTimeout ?? 'reconnect'
  const users = options.users ?? 10_000
  const userHeader = options.userHeader ?? 'x-user-id'
  const random = seededRandom(options.seed ?? 1)
  const pick = mixPicker(options.mix, random)
  const byKind: Record<string, ClosedKindResult> = {}
  for (const kind of options.mix) byKind[kind.name] = { sent: 0, ok: 0, refused: 0, timedOut: 0, errors: 0, latenciesMs: [] }
  const bucketMs = options.bucketMs ?? 100
  const okTimeline: number[] = new Array<number>(Math.ceil(options.durationMs / bucketMs)).fill(0)
  const pool = new RawClient(host, options.port)
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const start = performance.now()
  const countFrom = start + options.rampMs
  const stopAt = countFrom + options.durationMs
  const countStart = options.onCountStart === undefined ? undefined : setTimeout(options.onCountStart, options.rampMs)
  let connects = 0
  let running = 0
  let allDone: () => void = () => {}
  const finished = new Promise<void>((resolve) => { allDone = resolve })

  function client(): void {
    let connection: Connection | undefined
    let arrived = false
    const next = (): void => {
      const now = performance.now()
      if (now >= stopAt) {
        connection?.abort()
        if (--running === 0) allDone()
        return
      }
      if (connection === undefined || connection.closed) {
        // A client's first connection is its arrival, not a reconnect (with no ramp it falls in the counted part).
        if (arrived && now >= countFrom) connects++
        arrived = true
        connection = pool.open()
      }
      const kind = pick()
      const counted = now >= countFrom
      const result = byKind[kind.name] as ClosedKindResult
      if (counted) result.sent++
      const user = Math.floor(random() * users)
      let late = false
      const timer = setTimeout(() => {
        if (counted) result.timedOut++
        if (onTimeout === 'wait') {
          late = true
          return
        }
        connection?.abort()
        connection = undefined
        next()
      }, timeoutMs)
      const sentAt = now
      connection.send(`GET ${kind.path} HTTP/1.1\r\nhost: ${host}:${options.port}\r\n${userHeader}: u${user}\r\n\r\n`, (status) => {
        clearTimeout(timer)
        if (counted && !late) {
          if (status >= 200 && status < 300) {
            const answeredAt = performance.now()
            result.ok++
            result.latenciesMs.push(answeredAt - sentAt)
            const bucket = Math.floor((answeredAt - countFrom) / bucketMs)
            if (bucket < okTimeline.length) okTimeline[bucket] = (okTimeline[bucket] ?? 0) + 1
          } else if (status === 503 || status === 429) {
            result.refused++
          } else {
            result.errors++
          }
        }
        next()
      }, () => clearTimeout(timer))
    }
    running++
    next()
  }

  const starts = Array.from({ length: options.clients }, (_, i) => setTimeout(client, (options.rampMs * i) / options.clients))
  // A client that keeps waiting (`wait`) on a server that never answers would never finish: the
  // run ends a timeout after its end whatever the clients do.
  let cutOff: NodeJS.Timeout | undefined
  await Promise.race([finished, new Promise<void>((resolve) => { cutOff = setTimeout(resolve, options.rampMs + options.durationMs + timeoutMs + 1000) })])
  clearTimeout(cutOff)
  clearTimeout(countStart)
  for (const timer of starts) clearTimeout(timer)
  pool.close()
  lag.disable()
  const generatorLagP99Ms = lag.percentile(99) / 1e6
  return { clients: options.clients, onTimeout, durationMs: options.durationMs, byKind, connects, okTimeline, bucketMs, generatorLagP99Ms }
}
