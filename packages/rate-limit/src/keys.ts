/**
 * Client keys as they reach a store: bounded in length and free of characters that could break a
 * Redis key or a Cluster hash tag. The client IP is the default key: Fastify's and Express's
 * requests both carry `ip`, which honours the framework's trust-proxy setting, so X-Forwarded-For
 * is never believed unless the server was told to.
 */
import { createHash } from 'node:crypto'

/** A request's client key; `Req` is the framework's request (Fastify's, Express's). */
export type KeyGenerator<Req> = (request: Req) => string | number

export const defaultKey: KeyGenerator<unknown> = (request) => (request as { ip: string }).ip

/** Outside printable ASCII, or one of the characters with a meaning in a key: `{}` (hash tag) and `%` (our escape). */
const NEEDS_ESCAPE = /[^\x21-\x7e]|[{}%]/

/**
 * Percent-encodes a key that needs it, then hashes one longer than `maxLength` (SHA-256,
 * base64url). Hashed keys start with `%h`, which no escaped key can (an escape is `%` + two hex
 * digits), so the two never collide. An IP address passes through untouched.
 */
export function storeKey(raw: string | number, maxLength: number): string {
  let key = typeof raw === 'string' ? raw : String(raw)
  if (NEEDS_ESCAPE.test(key)) key = escapeKey(key)
  if (key.length > maxLength) key = `%h${createHash('sha256').update(key).digest('base64url')}`
  return key
}

function escapeKey(key: string): string {
  try {
    return encodeURIComponent(key)
  } catch {
    // A lone surrogate cannot be URI-encoded; its UTF-16 code units can.
    let escaped = ''
    for (let i = 0; i < key.length; i++) escaped += `%u${key.charCodeAt(i).toString(16).padStart(4, '0')}`
    return escaped
  }
}
