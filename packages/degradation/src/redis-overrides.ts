import { randomUUID } from 'node:crypto'
import type { OverrideState, Overrides } from './overrides.js'

/** The subscriber connection: `client.duplicate()` of an ioredis client fits. */
export interface RedisSubscriberLike {
  subscribe(channel: string): Promise<unknown>
  // `any`, as Node's EventEmitter declares it: anything narrower rejects an ioredis client.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown
  disconnect(): void
}

/** What the Redis sharing needs of the client the user passes (an ioredis `Redis` fits). */
export interface RedisClientLike {
  get(key: string): Promise<string | null>
  set(key: string, value: string): Promise<unknown>
  publish(channel: string, message: string): Promise<unknown>
  duplicate(): RedisSubscriberLike
}

export interface RedisOverridesOptions {
  client: RedisClientLike
  /** Prefix of the key holding the state and of the pub/sub channel. Default `spillway:degradation:`. */
  prefix?: string
  /**
   * Also re-read the key this often, ms (0: never): a message published while this instance was
   * reconnecting is otherwise only seen at the next change. Default 10000.
   */
  refreshIntervalMs?: number
}

export interface SyncLogger {
  warn(payload: object, message: string): void
  info(payload: object, message: string): void
}

interface Message {
  origin: string
  state: OverrideState
}

/**
 * Shares overrides across a fleet: every local decision is written to one key (for instances that
 * start or reconnect later) and published (for those listening now); every instance adopts what
 * others publish. Redis is never on a request's path: when it goes away, each instance keeps the
 * last state it knew, its overrides keep expiring on time, and errors are logged once per outage
 * and counted, never thrown.
 */
export class RedisOverrides {
  readonly key: string
  readonly channel: string
  readonly #client: RedisClientLike
  readonly #overrides: Overrides
  readonly #log: SyncLogger
  readonly #origin = randomUUID()
  #subscriber: RedisSubscriberLike | undefined
  #unlisten: (() => void) | undefined
  readonly #refreshIntervalMs: number
  #timer: NodeJS.Timeout | undefined
  #failing = false
  #errors = 0

  constructor(options: RedisOverridesOptions, overrides: Overrides, log: SyncLogger) {
    const prefix = options.prefix ?? 'spillway:degradation:'
    this.key = `${prefix}overrides`
    this.channel = `${prefix}changes`
    this.#client = options.client
    this.#overrides = overrides
    this.#log = log
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 10_000
  }

  /** Errors met talking to Redis since start. */
  get errors(): number {
    return this.#errors
  }

  /** Starts listening and sharing. Does not wait for Redis: an instance starts with or without it. */
  start(): void {
    this.#unlisten = this.#overrides.onChange((state, source) => {
      if (source === 'local') void this.#share(state)
    })
    if (this.#refreshIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh(), this.#refreshIntervalMs)
      this.#timer.unref()
    }
    let subscriber: RedisSubscriberLike
    try {
      subscriber = this.#client.duplicate()
    } catch (error) {
      this.#failed(error)
      return
    }
    this.#subscriber = subscriber
    subscriber.on('error', (error: Error) => this.#failed(error))
    subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.#receive(text)
    })
    // 'ready' fires on the first connection and on every reconnection: a state published while this
    // instance was cut off is read back from the key.
    subscriber.on('ready', () => void this.refresh())
    subscriber.subscribe(this.channel).catch((error: unknown) => this.#failed(error))
  }

  /** Reads the shared state from the key and adopts it if it is newer than the local one. */
  async refresh(): Promise<void> {
    try {
      const text = await this.#client.get(this.key)
      this.#recovered()
      if (text !== null) this.#overrides.adopt(parse(text))
    } catch (error) {
      this.#failed(error)
    }
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#unlisten?.()
    this.#unlisten = undefined
    try {
      this.#subscriber?.disconnect()
    } catch {}
    this.#subscriber = undefined
  }

  #receive(text: string): void {
    const message = parse(text) as Partial<Message> | undefined
    if (message === undefined || message.origin === this.#origin) return
    this.#overrides.adopt(message.state)
  }

  async #share(state: OverrideState): Promise<void> {
    try {
      await this.#client.set(this.key, JSON.stringify(state))
      await this.#client.publish(this.channel, JSON.stringify({ origin: this.#origin, state } satisfies Message))
      this.#recovered()
    } catch (error) {
      this.#failed(error)
    }
  }

  #failed(error: unknown): void {
    this.#errors++
    if (this.#failing) return
    this.#failing = true
    this.#log.warn({ err: error }, 'spillway degradation: Redis unavailable, keeping the last known overrides')
  }

  #recovered(): void {
    if (!this.#failing) return
    this.#failing = false
    this.#log.info({}, 'spillway degradation: Redis available again')
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
