import { problemDetails, retryAfterSeconds } from '@spillway/latency-window/core'
import { SHED_REASONS, type Refusal } from './decision.js'

/**
 * What a shed request is answered: a problem+json body per reason, serialized once at registration
 * (a refusal serializes nothing), and a Retry-After jittered ±50% so that refused clients do not
 * all come back in the same second, longer the more is shed, since a deep overload will not
 * clear in a second.
 */
export class RefusalBodies {
  readonly statusCode: 503 | 429
  readonly #minRetryAfterMs: number
  readonly #maxRetryAfterMs: number
  readonly #bodies: readonly string[]
  /** Their lengths in bytes, as Content-Length strings. */
  readonly #bodyLengths: readonly string[]

  constructor(statusCode: 503 | 429, minRetryAfterMs: number, maxRetryAfterMs: number) {
    this.statusCode = statusCode
    this.#minRetryAfterMs = minRetryAfterMs
    this.#maxRetryAfterMs = maxRetryAfterMs
    this.#bodies = SHED_REASONS.map((reason) => JSON.stringify(problemDetails(
      statusCode,
      statusCode === 503 ? 'Service Unavailable' : 'Too Many Requests',
      reason === 'deadline'
        ? 'The request arrived after its deadline.'
        : 'The server is overloaded and shed this request; retry after the delay in Retry-After.',
      { reason }
    )))
    this.#bodyLengths = this.#bodies.map((body) => String(Buffer.byteLength(body)))
  }

  /** Whole seconds, at `pressure` (0–1: how much is shed). */
  retryAfterSeconds(pressure: number): number {
    const baseMs = this.#minRetryAfterMs + pressure * (this.#maxRetryAfterMs - this.#minRetryAfterMs)
    return retryAfterSeconds(baseMs * (0.5 + Math.random()))
  }

  /** The serialized problem+json body for a refusal. */
  body(refusal: Refusal): string {
    return this.#bodies[refusal.index] as string
  }

  /** `body(refusal)`'s length in bytes, as a Content-Length value. */
  bodyLength(refusal: Refusal): string {
    return this.#bodyLengths[refusal.index] as string
  }
}
