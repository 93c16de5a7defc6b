/**
 * Pacing of refusals to clients that come straight back.
 *
 * A client that sends again the moment it is refused (an SDK retrying without backoff, a crowd of
 * users each waiting for one answer before the next) turns every refusal into another request: the
 * faster the server refuses, the more it has to refuse, until refusing takes the CPU that admitted
 * work and its downstream replies needed. Measured on a 2-core machine with 200 such clients on a
 * CPU-bound route, immediate refusals left the server 47% of its capacity for real work.
 *
 * So a connection that keeps coming back is answered more slowly. Once it has been refused
 * `afterRefusals` times in a row, each time sending again less than a second after its answer, its
 * next refusals are held before they are sent: about as long as the connection has been refused
 * without a break (half to all of it, jittered), at least `minDelayMs` and at most `maxDelayMs`,
 * as a client with exponential backoff would wait. It cannot come back faster than once per hold,
 * so the refusals' share of the CPU is bounded by the number of such connections over the hold,
 * not by how fast the server refuses. A client that honours Retry-After (at least a second)
 * starts a new run each time and is never held. An answer that is not a refusal ends a short run
 * and halves a long one (`served`).
 *
 * A connection that carries many users (a reverse proxy's, an HTTP client pool's) is held like any
 * other when `afterRefusals` of its requests in a row are refused, and a request behind a held
 * refusal on it waits (HTTP/1.1 answers in order). A pool that opens another connection while
 * one is busy (Node's Agent and undici's Pool by default) sends admissible requests on another
 * connection; behind a proxy whose connections are few and shared, raise `afterRefusals` (or
 * `afterMs`) so that those connections are rarely held.
 *
 * Holding is suspended for a while when it only pushes clients onto new connections, and holds
 * shorten while clients give up before their end (`#judge`).
 *
 * Held refusals wait in one timer wheel (slots of `TICK_MS`, one unref'd interval while anything is
 * held), at most `maxHeld` at a time (beyond that, refusals go out at once); `flush()` sends them
 * all, for a closing server. Nothing is paused and no `Connection` field is written, so HTTP/2
 * sessions are held per stream and never as a whole.
 */
import type { IncomingMessage } from 'node:http'
import type { Clock } from './clock.js'
import { monotonicNow } from './clock.js'
import {
  checkNumber, checkOptionsObject, checkKnownKeys, SpillwayOptionsError, type OptionsErrorFactory
} from './option-checks.js'

export interface RefusalPacingOptions {
  /**
   * Refusals in a row on one connection (each sent again within a second of the last answer) that
   * go out at once; the ones after are held. Default 1.
   */
  afterRefusals?: number
  /** How long a run of refusals must also have lasted before its refusals are held, ms (raise it behind a proxy whose connections carry many users). Default 0. */
  afterMs?: number
  /** Shortest hold, ms. Default 250. */
  minDelayMs?: number
  /**
   * Longest hold, ms. Keep it below your clients' timeouts: while more than one held refusal in 32
   * finds its client gone, the longest hold shortens by itself (not below `minDelayMs`). Default 750.
   */
  maxDelayMs?: number
  /** Refusals held at a time; beyond that they go out at once. Default 10 000. */
  maxHeld?: number
}

export type RefusalPacingSettings = Readonly<Required<RefusalPacingOptions>>

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const PACING_KEYS = Object.keys({
  afterRefusals: true, afterMs: true, minDelayMs: true, maxDelayMs: true, maxHeld: true
} satisfies Record<keyof RefusalPacingOptions, true>)

/**
 * The `option` (`pacing`) as given: `false` turns pacing off (undefined is returned), `true` or
 * undefined take the defaults, an object overrides them.
 */
export function normalizeRefusalPacing(
  option: string, input: unknown, fail: OptionsErrorFactory = (message) => new SpillwayOptionsError(message)
): RefusalPacingSettings | undefined {
  if (input === false) return undefined
  const given = checkOptionsObject<RefusalPacingOptions>(option, input === true ? undefined : input, fail)
  checkKnownKeys(option, given, PACING_KEYS, fail)
  const minDelayMs = checkNumber(`${option}.minDelayMs`, given.minDelayMs ?? 250, { min: 0, max: 60_000, fail })
  const maxDelayMs = checkNumber(`${option}.maxDelayMs`, given.maxDelayMs ?? Math.max(750, minDelayMs),
    { min: Math.max(minDelayMs, 1), max: 60_000, fail })
  return Object.freeze({
    afterRefusals: checkNumber(`${option}.afterRefusals`, given.afterRefusals ?? 3, { min: 0, max: 1_000_000, integer: true, fail }),
    afterMs: checkNumber(`${option}.afterMs`, given.afterMs ?? 0, { min: 0, max: 3_600_000, fail }),
    minDelayMs,
    maxDelayMs,
    maxHeld: checkNumber(`${option}.maxHeld`, given.maxHeld ?? 10_000, { min: 0, max: 1_000_000, integer: true, fail })
  })
}

/** A refusal that is ready to be sent: `release()` sends it. */
export interface HeldRefusal {
  readonly request: IncomingMessage
  release(): void
}

/** The timer functions the pacer uses (injectable for tests). */
export interface PacerTimers {
  setInterval(callback: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

const nodeTimers: PacerTimers = {
  setInterval(callback, ms) {
    const handle = setInterval(callback, ms)
    handle.unref()
    return handle
  },
  clearInterval: (handle) => { clearInterval(handle as NodeJS.Timeout) }
}

/** The wheel's resolution: a hold lasts its delay rounded up to the next tick. */
export const TICK_MS = 5

/**
 * A connection's current run of refusals. A run continues while the connection sends again less
 * than `QUICK_RETURN_MS` after each refusal was answered: sooner than any Retry-After (at least a
 * second), so a client that honours it starts a new run each time and is never held.
 */
interface Streak {
  count: number
  startedAt: number
  answeredAt: number
}

export const QUICK_RETURN_MS = 1000
/** See `served`. */
const LONG_RUN_FACTOR = 4
const JUDGE_EVERY_MS = 1000
/** Fewer holds than this in a second say nothing about the clients. */
const MIN_HOLDS_JUDGED = 20
export const SUSPEND_MS = 10_000

// On the connection (a socket, or an HTTP/2 session) under a registered symbol: every protection
// and every copy of this package in the process counts the same run. One object per connection
// ever refused, none per request.
const STREAK = Symbol.for('spillway.refusal.streak')
type Connection = { [STREAK]?: Streak }

/** The connection a request came on: its socket, or for HTTP/2 its session (shared by its streams). */
function connectionOf(request: IncomingMessage): Connection | undefined {
  if (request.httpVersionMajor !== 2) return request.socket as Connection | null ?? undefined
  return (request as unknown as { stream?: { session?: Connection } }).stream?.session
}

/** Whether the client has given up on the request: its socket (HTTP/2: its stream) is closed. */
function abandoned(request: IncomingMessage): boolean {
  if (request.httpVersionMajor !== 2) return request.socket === null || request.socket.destroyed
  return (request as unknown as { stream?: { destroyed?: boolean } }).stream?.destroyed === true
}

export class RefusalPacer {
  readonly settings: RefusalPacingSettings
  readonly #now: Clock
  readonly #timers: PacerTimers
  /** Slot `i` holds the refusals due in tick `i` modulo the wheel's size. */
  readonly #wheel: (HeldRefusal[] | undefined)[]
  #held = 0
  #heldTotal = 0
  /** The last tick whose slot was released. */
  #releasedTick = 0
  #interval: unknown
  #closed = false
  // Whether holding pays, judged per second: see `#judge`.
  #windowStartedAt = Number.NEGATIVE_INFINITY
  #freshInWindow = 0
  #holdsInWindow = 0
  #suspendedUntil = Number.NEGATIVE_INFINITY
  #pushedLastWindow = false
  // Whether the holds are longer than the clients wait: see `#judge`.
  #releasedInWindow = 0
  #abandonedInWindow = 0
  #longestMs: number

  constructor(settings: RefusalPacingSettings, now: Clock = monotonicNow, timers: PacerTimers = nodeTimers) {
    this.settings = settings
    this.#now = now
    this.#timers = timers
    this.#longestMs = settings.maxDelayMs
    const slots = Math.ceil(settings.maxDelayMs / TICK_MS) + 2
    this.#wheel = new Array<HeldRefusal[] | undefined>(slots).fill(undefined)
  }

  /** Refusals held now. */
  get held(): number {
    return this.#held
  }

  /** Refusals held since the pacer was created. */
  get heldTotal(): number {
    return this.#heldTotal
  }

  /**
   * Counts a refusal on the request's connection and answers how long to hold it, ms: 0 when it
   * goes out now, else about as long as the connection has been refused without a break (between
   * `minDelayMs` and `maxDelayMs`, jittered), so that a connection that keeps coming back is
   * answered ever more slowly, as a client with exponential backoff would come back. The caller
   * passes a refusal to hold with `hold`.
   */
  refused(request: IncomingMessage): number {
    const connection = connectionOf(request)
    if (connection === undefined) return 0
    const now = this.#now()
    if (now - this.#windowStartedAt >= JUDGE_EVERY_MS) this.#judge(now)
    let streak = connection[STREAK]
    if (streak === undefined) {
      streak = connection[STREAK] = { count: 0, startedAt: now, answeredAt: now }
      this.#freshInWindow++
    }
    if (streak.count === 0 || now - streak.answeredAt > QUICK_RETURN_MS) {
      streak.count = 0
      streak.startedAt = now
    }
    streak.count++
    streak.answeredAt = now
    const { afterRefusals, afterMs, minDelayMs, maxHeld } = this.settings
    const runMs = now - streak.startedAt
    if (streak.count <= afterRefusals || runMs < afterMs || this.#closed || this.#held >= maxHeld) return 0
    this.#holdsInWindow++
    if (now < this.#suspendedUntil) return 0
    return Math.min(this.#longestMs, Math.max(minDelayMs, runMs * (0.5 + 0.5 * Math.random())))
  }

  /** The longest hold now, ms: `maxDelayMs`, or less while clients give up on held refusals (see `#judge`). */
  get longestHoldMs(): number {
    return this.#longestMs
  }

  /** Whether holding is suspended now (see `#judge`). */
  get suspended(): boolean {
    return this.#now() < this.#suspendedUntil
  }

  /**
   * Holding pays only against clients that wait for their answer. Clients behind a pool that opens
   * another connection while one is busy (an open-loop stream of users through a proxy or an HTTP
   * client pool) do not slow down when held: the pool sends the next request on a new connection,
   * which costs the server an accept and a handshake, and a busy server accepts about one
   * connection per event-loop turn, so the new connections wait in its accept queue, admissible
   * requests included. That shows as refusals on connections never refused before arriving at
   * half the rate (or more) of the refusals held, two seconds in a row: then holding is suspended
   * for `SUSPEND_MS`, long enough for the pool to settle on the connections it has. (Whether the
   * pool also closes connections says nothing: its requests time out in the accept queue, so it
   * closes about as many as it opens, like a crowd that reconnects after its timeouts.)
   *
   * And a hold pays only while the client waits for its end. A client that gives up first (its
   * timeout is shorter than the hold) comes back on a new connection, which costs more than the
   * refusals the hold saved: when more than one held refusal in 32 finds its client gone, the
   * longest hold shortens by a quarter (not below `minDelayMs`), and grows back by an eighth of
   * the range each second that clients wait.
   */
  #judge(now: number): void {
    const pushing = this.#holdsInWindow >= MIN_HOLDS_JUDGED && this.#freshInWindow * 2 >= this.#holdsInWindow
    // Two seconds in a row: clients arriving (a crowd connecting at once) look so for one.
    if (pushing && this.#pushedLastWindow) this.#suspendedUntil = now + SUSPEND_MS
    this.#pushedLastWindow = pushing
    const { minDelayMs, maxDelayMs } = this.settings
    if (this.#releasedInWindow >= MIN_HOLDS_JUDGED && this.#abandonedInWindow * 32 > this.#releasedInWindow) {
      this.#longestMs = Math.max(minDelayMs, this.#longestMs * 0.75)
    } else if (this.#longestMs < maxDelayMs) {
      this.#longestMs = Math.min(maxDelayMs, this.#longestMs + (maxDelayMs - minDelayMs) / 8)
    }
    this.#windowStartedAt = now
    this.#freshInWindow = 0
    this.#holdsInWindow = 0
    this.#releasedInWindow = 0
    this.#abandonedInWindow = 0
  }

  /** Holds a refusal for `delayMs` (as `refused` answered). */
  hold(refusal: HeldRefusal, delayMs: number): void {
    const now = this.#now()
    const nowTick = Math.floor(now / TICK_MS)
    // The interval is late (a busy loop): what is due goes first, so that this refusal's slot is
    // not one the late interval is about to release a turn early.
    if (this.#held > 0 && nowTick > this.#releasedTick) this.#releaseThrough(nowTick)
    if (this.#held === 0) {
      this.#releasedTick = nowTick
      this.#interval ??= this.#timers.setInterval(() => { this.releaseDue() }, TICK_MS)
    }
    const dueTick = Math.ceil((now + delayMs) / TICK_MS)
    const slot = dueTick % this.#wheel.length
    const due = this.#wheel[slot] ??= []
    due.push(refusal)
    this.#held++
    this.#heldTotal++
  }

  /**
   * An answer on the request's connection that is not a refusal. After a short run the run ends:
   * the connection is a shared one that is often admitted (a pool's, a proxy's), and holding it
   * would push its pool onto new connections. After a long run (more than `LONG_RUN_FACTOR` ×
   * `afterRefusals` refusals) its count halves instead: a client admitted once in a while that
   * comes straight back is held again at once, not after `afterRefusals` more refusals.
   */
  served(request: IncomingMessage): void {
    const streak = connectionOf(request)?.[STREAK]
    if (streak === undefined || streak.count === 0) return
    streak.count = streak.count > LONG_RUN_FACTOR * this.settings.afterRefusals ? streak.count >> 1 : 0
  }

  /** Sends the refusals that are due (the interval calls it; tests with their own clock too). */
  releaseDue(): void {
    this.#releaseThrough(Math.floor(this.#now() / TICK_MS))
  }

  #releaseThrough(nowTick: number): void {
    // A stalled event loop can skip ticks; never more than one turn of the wheel is pending.
    const from = Math.max(this.#releasedTick + 1, nowTick - this.#wheel.length + 1)
    for (let tick = from; tick <= nowTick && this.#held > 0; tick++) this.#releaseSlot(tick % this.#wheel.length)
    this.#releasedTick = nowTick
  }

  /** Sends everything held, and holds nothing from now on (the server is closing). */
  flush(): void {
    this.#closed = true
    for (let slot = 0; slot < this.#wheel.length && this.#held > 0; slot++) this.#releaseSlot(slot)
  }

  #releaseSlot(slot: number): void {
    const due = this.#wheel[slot]
    if (due === undefined) return
    this.#wheel[slot] = undefined
    this.#held -= due.length
    if (this.#held === 0) this.#stop()
    const now = this.#now()
    this.#releasedInWindow += due.length
    for (let i = 0; i < due.length; i++) {
      const refusal = due[i]!
      if (abandoned(refusal.request)) this.#abandonedInWindow++
      // The run goes on from when the client got its answer, not from when it was refused.
      const streak = connectionOf(refusal.request)?.[STREAK]
      if (streak !== undefined) streak.answeredAt = now
      try {
        refusal.release()
      } catch (error) {
        // Off the request's stack nobody can catch it, and the other refusals must still go out.
        process.emitWarning(error as Error)
      }
    }
  }

  #stop(): void {
    if (this.#interval === undefined) return
    this.#timers.clearInterval(this.#interval)
    this.#interval = undefined
  }
}
