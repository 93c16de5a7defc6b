import type { FastifyInstance } from 'fastify'
import type { SimulatedDatabase } from './database.js'
import { takeSnapshot, type ShopSnapshot } from './snapshot.js'

/**
 * Takes a snapshot every `intervalMs` and hands it to every subscriber (the dashboard's
 * server-sent event streams). One timer for all viewers, so a hundred open dashboards cost what
 * one does; `unref()`ed and cleared when the app closes.
 */
export class LiveState {
  #latest: ShopSnapshot
  readonly #subscribers = new Set<(snapshot: ShopSnapshot) => void>()
  readonly #timer: NodeJS.Timeout

  constructor(app: FastifyInstance, protection: boolean, database: SimulatedDatabase, intervalMs: number) {
    this.#latest = takeSnapshot(app, protection, database)
    this.#timer = setInterval(() => {
      this.#latest = takeSnapshot(app, protection, database, this.#latest)
      for (const subscriber of this.#subscribers) subscriber(this.#latest)
    }, intervalMs)
    this.#timer.unref()
    app.addHook('onClose', async () => {
      clearInterval(this.#timer)
      this.#subscribers.clear()
    })
  }

  get latest(): ShopSnapshot {
    return this.#latest
  }

  /** Calls `subscriber` on every tick until the returned function is called. */
  subscribe(subscriber: (snapshot: ShopSnapshot) => void): () => void {
    this.#subscribers.add(subscriber)
    return () => { this.#subscribers.delete(subscriber) }
  }
}
