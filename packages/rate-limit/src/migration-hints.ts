/**
 * Option names of @fastify/rate-limit and express-rate-limit that users bring along when they
 * migrate, each with what to write here instead: a limiter that silently ignored `max` and
 * `timeWindow` would limit at its defaults, far from what was meant.
 */
const FASTIFY_RATE_LIMIT = '@fastify/rate-limit'
const EXPRESS_RATE_LIMIT = 'express-rate-limit'
const BOTH = `${FASTIFY_RATE_LIMIT} and ${EXPRESS_RATE_LIMIT}`

const LIMITS = 'a bucket holds capacity tokens (the burst) and earns refillPerSecond of them a second'
const WINDOW = 'the window is set by refillPerSecond and capacity (an empty bucket is full again after capacity / refillPerSecond seconds)'
const HEADERS = 'headers (default true) sends the draft RateLimit-Policy and RateLimit fields, legacyHeaders adds X-RateLimit-Limit/Remaining/Reset'
const ON_ERROR = "onStoreError: 'open' admits while the store fails ('local', the default, decides from an in-process bucket)"

export const MIGRATION_HINTS = {
  max: { from: BOTH, instead: `${LIMITS}: max: 100 a minute is about capacity: 100, refillPerSecond: 100 / 60` },
  limit: { from: EXPRESS_RATE_LIMIT, instead: `${LIMITS}: limit: 100, windowMs: 60000 is about capacity: 100, refillPerSecond: 100 / 60` },
  timeWindow: { from: FASTIFY_RATE_LIMIT, instead: `${WINDOW}: max: 100, timeWindow: 60000 is about capacity: 100, refillPerSecond: 100 / 60` },
  windowMs: { from: EXPRESS_RATE_LIMIT, instead: `${WINDOW}: limit: 100, windowMs: 60000 is about capacity: 100, refillPerSecond: 100 / 60` },
  keyGenerator: { from: BOTH, instead: 'key is the client key: key: (request) => request.ip (the default)' },
  skip: { from: EXPRESS_RATE_LIMIT, instead: 'allowList: (request, key) => boolean leaves the requests it returns true for unlimited' },
  nameSpace: { from: FASTIFY_RATE_LIMIT, instead: 'prefix starts every Redis key' },
  cache: { from: FASTIFY_RATE_LIMIT, instead: 'maxKeys bounds the buckets the memory store keeps per policy' },
  store: { from: BOTH, instead: 'redis takes an ioredis client or a redis:// URL, and any rate-limiter-flexible limiter goes in policies: [{ name, limiter }]' },
  skipOnError: { from: FASTIFY_RATE_LIMIT, instead: ON_ERROR },
  passOnStoreError: { from: EXPRESS_RATE_LIMIT, instead: ON_ERROR },
  standardHeaders: { from: EXPRESS_RATE_LIMIT, instead: HEADERS },
  enableDraftSpec: { from: FASTIFY_RATE_LIMIT, instead: HEADERS },
  addHeaders: { from: FASTIFY_RATE_LIMIT, instead: HEADERS },
  addHeadersOnExceeding: { from: FASTIFY_RATE_LIMIT, instead: HEADERS },
  onExceeded: { from: FASTIFY_RATE_LIMIT, instead: 'onLimited: (request, reply, context) => void is called on every refusal' },
  handler: { from: EXPRESS_RATE_LIMIT, instead: 'errorResponseBuilder: (request, context) => body builds the 429\'s body, onLimited: (request, response, context) => void is called on every refusal' },
  message: { from: EXPRESS_RATE_LIMIT, instead: 'errorResponseBuilder: (request, context) => body builds the 429\'s body' },
  ban: { from: FASTIFY_RATE_LIMIT, instead: 'there is no ban (a 403 after repeated 429s); pacing holds the 429s of clients that come straight back' }
} as const
