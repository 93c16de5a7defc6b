/**
 * One server's degradation, built from a normalized configuration the same way under every
 * framework: the state (controller and overrides), its level changes logged, and, once started,
 * its overrides shared through Redis when configured and the timer that evaluates the level.
 */
import { Degradation } from './degradation.js'
import { LevelController, type LoadReading } from './level-controller.js'
import type { DegradationConfig } from './options.js'
import { Overrides } from './overrides.js'
import { RedisOverrides, type SyncLogger } from './redis-overrides.js'

export class ServerDegradation {
  readonly state: Degradation
  readonly #config: DegradationConfig
  readonly #log: SyncLogger
  #sync: RedisOverrides | undefined
  #timer: NodeJS.Timeout | undefined

  /** `read` takes a load reading from the shared meter; `log` gets level changes and Redis trouble. */
  constructor(config: DegradationConfig, read: () => LoadReading, log: SyncLogger) {
    this.#config = config
    this.#log = log
    const controller = new LevelController(config.controller)
    const overrides = new Overrides(config.features, config.controller.levels, config.wallNow)
    this.state = new Degradation(config.features, controller, overrides, read)
    this.state.onEvent((event) => {
      if (event.type !== 'level') return
      const payload = { from: event.from, to: event.to, reason: event.reason, off: event.off, on: event.on, reading: event.reading, value: event.value, threshold: event.threshold }
      if (event.to > event.from) log.warn(payload, 'spillway degradation level up')
      else log.info(payload, 'spillway degradation level down')
    })
  }

  /** Starts the Redis sharing and the evaluation timer: last, once nothing else can fail. */
  start(): void {
    const { redis, evaluateIntervalMs } = this.#config
    if (redis !== undefined) {
      this.#sync = new RedisOverrides(redis, this.state.overrides, this.#log)
      this.state.redis = this.#sync
      this.#sync.start()
    }
    if (evaluateIntervalMs > 0) {
      const state = this.state
      this.#timer = setInterval(() => state.evaluate(), evaluateIntervalMs)
      // Degradation must never be what keeps a process alive.
      this.#timer.unref()
    }
  }

  /** Stops the evaluation timer and the Redis sharing. */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#sync?.stop()
    this.#sync = undefined
  }
}
