/**
 * The store the options ask for — memory, or Redis behind the fallback, with the ioredis client it
 * may create and the wait for it at startup — and the limiter every mount builds on it.
 */
import type { NormalizedOptions } from './options.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore, type RedisClient } from './redis-store.js'
import { connectRedis, type OwnedRedisClient } from './redis-connection.js'
import { StoreFallback, logTransition, type TransitionLogger } from './store-fallback.js'
import { RateLimitStats } from './stats.js'
import { RateLimiter } from './rate-limiter.js'
import type { BucketStore } from './policy.js'

/** How long a limiter waits for a Redis it connects to itself; past that it starts on the fallback. */
const CONNECT_WAIT_MS = 2000

/** The limiter, its counters and its store, from the options: what a mount builds at registration. */
export function createRateLimiter<Req, Res>(
  options: NormalizedOptions<Req, Res>, log: TransitionLogger
): { limiter: RateLimiter<Req, Res>, ready: Promise<void> } {
  const stats = new RateLimitStats(options.now)
  const { store, ready } = createStore(options, stats, log)
  return { limiter: new RateLimiter(options, store, stats), ready }
}

/**
 * The store the options ask for: memory, or Redis behind the fallback. `ready` settles when a Redis
 * the limiter connects to itself (a URL) is ready, or after `CONNECT_WAIT_MS` with a warning;
 * decisions taken before then go to the fallback.
 */
export function createStore<Req, Res>(
  options: NormalizedOptions<Req, Res>, stats: RateLimitStats, log: TransitionLogger
): { store: BucketStore, ready: Promise<void> } {
  const memoryOptions = { maxKeys: options.maxKeys, ...(options.now === undefined ? {} : { now: options.now }) }
  if (options.redis === undefined) return { store: new MemoryStore(memoryOptions), ready: Promise.resolve() }
  const ownsClient = typeof options.redis === 'string'
  const { client, ready } = typeof options.redis === 'string'
    ? connect(options.redis, log)
    : { client: options.redis, ready: Promise.resolve() }
  const store = new StoreFallback({
    store: new RedisStore({ client, prefix: options.prefix, ownsClient }),
    onStoreError: options.onStoreError,
    storeTimeoutMs: options.storeTimeoutMs,
    probeIntervalMs: options.probeIntervalMs,
    instances: options.instances,
    maxKeys: options.maxKeys,
    stats,
    log,
    ...(options.now === undefined ? {} : { now: options.now })
  })
  return { store, ready }
}

/** A client of the limiter's own, and its wait for the connection. */
function connect(url: string, log: TransitionLogger): { client: RedisClient, ready: Promise<void> } {
  const client = connectRedis(url)
  // ioredis reports every failed reconnect; the fallback logs the outage once instead.
  client.on('error', () => {})
  // Without the offline queue, commands sent before the connection is up would fail: wait for it.
  const ready = waitReady(client, CONNECT_WAIT_MS).then((isReady) => {
    if (!isReady) logTransition(log, 'warn', { waitedMs: CONNECT_WAIT_MS }, 'rate-limit Redis not ready at startup: the fallback decides until it is')
  })
  return { client, ready }
}

function waitReady(client: OwnedRedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer)
      client.off('ready', onReady)
      resolve(ready)
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), timeoutMs)
    client.on('ready', onReady)
  })
}
