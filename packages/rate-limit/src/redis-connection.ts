/**
 * The ioredis client a limiter creates itself when its `redis` option is a URL. ioredis is an
 * optional peer dependency, so it is loaded here and only then: through `createRequire` (ioredis 5
 * and 6 are CommonJS), synchronously, so that a missing package fails at registration as a bad
 * option does rather than at the first request.
 */
import { createRequire } from 'node:module'
import { failOption } from './errors.js'
import type { RedisClient } from './redis-store.js'

/** What the limiter also calls on a client it owns: it waits for the connection at startup. */
export interface OwnedRedisClient extends RedisClient {
  readonly status: string
  on(event: 'ready' | 'error', listener: () => void): unknown
  off(event: 'ready', listener: () => void): unknown
}

/** The part of the ioredis module used here (the named `Redis` export exists since ioredis 5). */
export interface IoredisModule {
  Redis: new (url: string, options: { enableOfflineQueue: boolean, maxRetriesPerRequest: number }) => OwnedRedisClient
}

const MISSING = 'redis is a URL, which needs the ioredis package (5 or 6) installed beside @spillway/rate-limit; install it, or pass your own client'

/** `load` is `require` from this package's directory, replaceable in tests. */
export function connectRedis(url: string, load: (id: string) => unknown = createRequire(import.meta.url)): OwnedRedisClient {
  let ioredis: Partial<IoredisModule>
  try {
    ioredis = load('ioredis') as Partial<IoredisModule>
  } catch (error) {
    if ((error as { code?: unknown }).code === 'MODULE_NOT_FOUND') throw failOption(MISSING)
    throw error
  }
  // ioredis 4 has no named export: the same advice, rather than "Redis is not a constructor".
  if (typeof ioredis.Redis !== 'function') throw failOption(MISSING)
  // Without the offline queue a command fails at once while Redis is down, instead of waiting for storeTimeoutMs.
  return new ioredis.Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
}
