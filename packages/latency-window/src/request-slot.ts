/**
 * A value kept per request, on Node's request where that is cheap and beside it where it is not.
 *
 * On a request whose prototype is still Node's `IncomingMessage.prototype` (Fastify's raw request,
 * any request a front door meets) the value is a symbol-keyed property: every request gets the
 * same hidden-class transition, and nothing is left for the garbage collector to trace. Express
 * gives every request it routes a new prototype (`setPrototypeOf(req, app.request)`), after which
 * each property added to it costs microseconds (measured: about 2.5 µs a property): there the
 * value goes into a WeakMap. Not a WeakMap for every request: a WeakMap with tens of thousands of
 * short-lived keys a second makes each garbage collection trace them as ephemerons, which cost a
 * Fastify hello-world route about a third of its throughput (measured with `pnpm bench`).
 */
import { IncomingMessage } from 'node:http'

/** The values kept beside requests; `used` stays false in a process that never needed it (Fastify). */
interface Beside<T> {
  readonly map: WeakMap<object, T>
  used: boolean
}

export class RequestSlot<T> {
  readonly #key: symbol
  readonly #beside: Beside<T>

  /**
   * `shared`: the same slot for every copy of this package in the process (the name is a registered
   * symbol, the map lives on globalThis); otherwise private to this instance.
   */
  constructor(name: string, shared = false) {
    this.#key = shared ? Symbol.for(name) : Symbol(name)
    if (!shared) {
      this.#beside = { map: new WeakMap(), used: false }
      return
    }
    const scope = globalThis as Record<symbol, Beside<T> | undefined>
    this.#beside = (scope[Symbol.for(`${name}.beside`)] ??= { map: new WeakMap(), used: false })
  }

  get(request: IncomingMessage): T | undefined {
    const own = (request as unknown as Record<symbol, T | undefined>)[this.#key]
    if (own !== undefined || !this.#beside.used) return own
    return this.#beside.map.get(request)
  }

  set(request: IncomingMessage, value: T): void {
    if (Object.getPrototypeOf(request) === IncomingMessage.prototype) {
      (request as unknown as Record<symbol, T | undefined>)[this.#key] = value
    } else {
      this.#beside.used = true
      this.#beside.map.set(request, value)
    }
  }

  /** Forgets the value (a property set to undefined rather than deleted: the hidden class stays). */
  clear(request: IncomingMessage): void {
    const own = request as unknown as Record<symbol, T | undefined>
    if (own[this.#key] !== undefined) own[this.#key] = undefined
    else if (this.#beside.used) this.#beside.map.delete(request)
  }
}
