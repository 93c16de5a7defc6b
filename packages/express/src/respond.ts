/**
 * How the three middlewares answer a request they refuse: with Node's own response API, so that
 * the answer is byte for byte the Fastify plugins' (RFC 9457 problem details, `Retry-After` in whole
 * seconds) and works the same under Express 4 and 5.
 */
import type { ServerResponse } from 'node:http'
import { PROBLEM_CONTENT_TYPE, problemDetails, sendRawProblem, type ProblemDetails } from '@spillway/latency-window/core'

export { PROBLEM_CONTENT_TYPE, problemDetails, type ProblemDetails }

/** Sends `body` (already serialized, or problem details to serialize) with its status and Retry-After. */
export function sendProblem(
  response: ServerResponse, status: number, retryAfterSeconds: number | undefined, body: string | ProblemDetails
): void {
  sendRawProblem(response, status, retryAfterSeconds, typeof body === 'string' ? body : JSON.stringify(body))
}

/** Anything Express's `res.send` takes, sent with Express when it is there and with Node otherwise. */
export function sendValue(response: ServerResponse, status: number, value: unknown): void {
  response.statusCode = status
  const send = (response as ServerResponse & { send?: (body: unknown) => unknown }).send
  if (typeof send === 'function') {
    send.call(response, value)
    return
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? ''
  if (typeof value !== 'string') response.setHeader('Content-Type', 'application/json; charset=utf-8')
  response.end(text)
}
