/**
 * How every Spillway package answers a request it refuses (429 or 503): an RFC 9457 problem
 * details body and a Retry-After in whole seconds. Framework-free, so Fastify and Express answer
 * byte for byte alike.
 */
import type { ServerResponse } from 'node:http'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** RFC 9457 §3.1 members, plus extension members. */
export interface ProblemDetails {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  [extension: string]: unknown
}

/** `about:blank` with the status phrase as title, as RFC 9457 §4.2.1 recommends for a plain status. */
export function problemDetails(
  status: number,
  title: string,
  detail?: string,
  extensions?: Readonly<Record<string, unknown>>
): ProblemDetails {
  const body: ProblemDetails = { type: 'about:blank', title, status }
  if (detail !== undefined) body.detail = detail
  if (extensions !== undefined) Object.assign(body, extensions)
  return body
}

/**
 * Retry-After (RFC 9110 §10.2.3) is whole seconds; rounding up so a client that obeys it exactly
 * does not come back a fraction of a second too early, and at least 1 so that it waits at all.
 */
export function retryAfterSeconds(ms: number): number {
  if (!(ms > 0)) return 1
  return Math.max(1, Math.ceil(ms / 1000))
}

/**
 * Sends a refusal with Node's own response API, for code that answers before (or without) a
 * framework: status, Retry-After when given, and a problem+json body already serialized
 * (`bodyLength` its byte length, when the caller has it precomputed). One `writeHead` with a flat
 * list, not `setHeader` per field: that builds no header map for a response this short. Headers
 * set earlier on the response are kept (Node merges them; the fields given here win).
 */
export function sendRawProblem(
  response: ServerResponse, status: number, retryAfterSeconds: number | undefined, body: string,
  bodyLength: string = String(Buffer.byteLength(body))
): void {
  response.writeHead(status, retryAfterSeconds === undefined
    ? ['content-type', PROBLEM_CONTENT_TYPE, 'content-length', bodyLength]
    : ['retry-after', String(retryAfterSeconds), 'content-type', PROBLEM_CONTENT_TYPE, 'content-length', bodyLength])
  response.end(body)
}
