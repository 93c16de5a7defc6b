import { performance } from 'node:perf_hooks'
import { RawClient } from './raw-client.js'

/** One kind of request in the mix, e.g. `{ name: 'high', path: '/high', weight: 10 }`. */
export interface RequestKind {
  name: string
  path: string
  weight: number
}

/** A stretch of constant arrival rate; phases run back to back. */
export interface Phase {
  name: string
  ratePerSecond: number
  durationMs: number
}

export interface OpenLoopOptions {
  host?: string
  port: number
  /** Arrival rates, held whatever the server does (open loop), one phase after the other. */
  phases: readonly Phase[]
  /** A client gives up this long after its request was due, ms. Default 1000. */
  timeoutMs?: number
  mix: readonly RequestKind[]
  /** Distinct `x-user-id` values (the cohort key). Default 10 000. */
  users?: number
  /** Connections to reuse across runs; one is made (and closed) per run otherwise. */
  client?: RawClient
  /** Seed of the arrival mix, so two targets see the same sequence. Default 1. */
  seed?: number
  /** Width of the timeline buckets, ms. Default 100. */
  bucketMs?: number
}

export interface KindResult {
  offered: number
  /** 2xx that arrived within the client timeout. */
  ok: number
  /** 503 or 429. */
  shed: number
  timedOut: number
  /** Connection errors and other statuses. */
  errors: number
  /** Latency of the successes, ms, from when the request was due (no coordinated omission). */
  latenciesMs: number[]
}

export interface TimelineBucket {
  sent: number
  ok: number
  shed: number
  timedOut: number
  errors: number
}

export interface PhaseResult {
  name: string
  ratePerSecond: number
  /** Requests actually sent per second (lower than asked if the generator itself fell behind). */
  sentPerSecond: number
  durationMs: number
  byKind: Record<string, KindResult>
  /** Outcomes by when the request was due, from the phase's start, `bucketMs` wide. */
  timeline: TimelineBucket[]
  bucketMs: number
}

/** A deterministic PRNG (mulberry32), so every target is offered the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Picks a kind of request at random by weight, from `random` (so that a seed gives the same sequence). */
export function mixPicker(mix: readonly RequestKind[], random: () => number): () => RequestKind {
  const totalWeight = mix.reduce((sum, kind) => sum + kind.weight, 0)
  return () => {
    let r = random() * totalWeight
    for (const kind of mix) {
      r -= kind.weight
      if (r < 0) return kind
    }
    return mix[mix.length - 1]!
  }
}

/**
 * The generator's connections: as many as are needed, so that every request is on the wire when
 * it is due, as independent clients would be (the client never queues one itself).
 */
export function createClient(port: number, host = '127.0.0.1'): RawClient {
  return new RawClient(host, port)
}

/**
 * Open-loop load: requests are sent at a fixed rate whatever the responses do — unlike a
 * closed-loop tool (autocannon, wrk), which slows down with the server and so hides its collapse.
 * Each request has a client timeout counted from when it was due; it resolves when every request
 * of every phase has settled.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<PhaseResult[]> {
  const host = options.host ?? '127.0.0.1'
  const timeoutMs = options.timeoutMs ?? 1000
  const users = options.users ?? 10_000
  const bucketMs = options.bucketMs ?? 100
  const client = options.client ?? createClient(options.port, host)
  const random = seededRandom(options.seed ?? 1)
  const pick = mixPicker(options.mix, random)
  const results: PhaseResult[] = options.phases.map((phase) => {
    const byKind: Record<string, KindResult> = {}
    for (const kind of options.mix) byKind[kind.name] = { offered: 0, ok: 0, shed: 0, timedOut: 0, errors: 0, latenciesMs: [] }
    return { name: phase.name, ratePerSecond: phase.ratePerSecond, sentPerSecond: 0, durationMs: phase.durationMs, byKind, timeline: [], bucketMs }
  })

  let pending = 0
  let finishedSending = false
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((resolve) => { resolveDone = resolve })
  const start = performance.now()

  function fire(phase: PhaseResult, phaseStart: number, dueAt: number): void {
    const kind = pick()
    const result = phase.byKind[kind.name]!
    const index = Math.max(0, Math.floor((dueAt - phaseStart) / bucketMs))
    while (phase.timeline.length <= index) phase.timeline.push({ sent: 0, ok: 0, shed: 0, timedOut: 0, errors: 0 })
    const slot = phase.timeline[index]!
    result.offered++
    slot.sent++
    pending++
    let settled = false
    const settle = (outcome: 'ok' | 'shed' | 'timedOut' | 'errors'): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      result[outcome]++
      slot[outcome]++
      if (outcome === 'ok') result.latenciesMs.push(performance.now() - start - dueAt)
      if (--pending === 0 && finishedSending) resolveDone()
    }
    const connection = client.get(kind.path, `x-user-id: ${Math.floor(random() * users)}\r\n`, (status) => {
      settle(status >= 200 && status < 300 ? 'ok' : status === 503 || status === 429 ? 'shed' : 'errors')
    })
    const timer = setTimeout(() => {
      settle('timedOut')
      connection.abort()
    }, Math.max(1, timeoutMs - (performance.now() - start - dueAt)))
  }

  let phaseStart = 0
  for (const [i, phase] of options.phases.entries()) {
    const result = results[i]!
    const intervalMs = 1000 / phase.ratePerSecond
    const total = Math.round(phase.durationMs / intervalMs)
    let sent = 0
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const elapsed = performance.now() - start - phaseStart
        const due = Math.min(Math.floor(elapsed / intervalMs) + 1, total)
        while (sent < due) fire(result, phaseStart, phaseStart + sent++ * intervalMs)
        if (sent >= total && elapsed >= phase.durationMs) return resolve()
        setTimeout(tick, 1)
      }
      tick()
    })
    result.sentPerSecond = (sent * 1000) / phase.durationMs
    phaseStart += phase.durationMs
  }
  finishedSending = true
  if (pending > 0) await done
  if (options.client === undefined) client.close()
  return results
}

/**
 * Closed loop at `concurrency`: the most the server completes per second — its capacity, which
 * the open-loop steps are scaled to. The median of the per-`windowMs` rates, so that one window
 * disturbed by a neighbour on a shared machine (or by the JIT, early on) does not set the scale
 * of the whole run.
 */
export async function measureCapacity(options: {
  host?: string, port: number, path: string, concurrency: number, durationMs: number, warmupMs?: number, windowMs?: number
}): Promise<number> {
  const client = createClient(options.port, options.host)
  const windowMs = Math.min(options.windowMs ?? 500, options.durationMs)
  let counting = false
  let completed = 0
  let stop = false
  const one = (): Promise<void> => new Promise((resolve) => {
    client.get(options.path, '', (status) => {
      if (counting && status >= 200 && status < 300) completed++
      resolve()
    })
  })
  const worker = async (): Promise<void> => {
    while (!stop) await one()
  }
  const workers = Array.from({ length: options.concurrency }, worker)
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs ?? 1000))
  counting = true
  const rates: number[] = []
  const end = performance.now() + options.durationMs
  while (performance.now() < end) {
    const start = performance.now()
    completed = 0
    await new Promise((resolve) => setTimeout(resolve, windowMs))
    rates.push((completed * 1000) / (performance.now() - start))
  }
  counting = false
  stop = true
  await Promise.all(workers)
  client.close()
  return quantile(rates, 0.5)
}

/** Nearest-rank quantile of unsorted values (sorts a copy). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}
