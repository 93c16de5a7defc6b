/**
 * Token buckets shared through Redis: one `EVALSHA` per decision (the script is sent in full only
 * when Redis answers NOSCRIPT, e.g. after a restart), Redis's clock, hash-tagged keys so that all
 * policies of one client land in one Redis Cluster slot, TTLs so idle buckets vanish.
 */
import { createHash } from 'node:crypto'
import { TOKEN_BUCKET_SCRIPT, TOKEN_BUCKETS_SCRIPT } from './redis-script.js'
import type { BucketPolicy, BucketStore, Decision } from './policy.js'

/**
 * The methods the limiter calls on a Redis client: an ioredis 5 or 6 `Redis` or `Cluster` fits.
 * Stated here rather than as ioredis's classes so that ioredis stays an optional peer: an
 * application on either major version passes its client without a type error, and one that does
 * not use Redis compiles without ioredis installed.
 */
export interface RedisClient {
  evalsha(sha1: string, keyCount: number, ...args: string[]): Promise<unknown>
  eval(script: string, keyCount: number, ...args: string[]): Promise<unknown>
  /** Called on close, and only on a client the limiter created itself (from a URL). */
  quit(): Promise<unknown>
  disconnect(): void
}

export interface RedisStoreOptions {
  client: RedisClient
  /** Start of every key; the `{prefix:key}` part is the Cluster hash tag. */
  prefix?: string
  /** Quit the client on close (when the plugin created it from a URL). */
  ownsClient?: boolean
}

function readReply(reply: number[], policyCount: number, out: Decision): Decision {
  out.allowed = reply[0] === 1
  out.source = 'store'
  let retryAfterMs = 0
  for (let i = 0; i < policyCount; i++) {
    const result = out.results[i]
    if (result === undefined) continue
    const base = 1 + i * 3
    result.remaining = Number(reply[base])
    result.retryAfterMs = Number(reply[base + 1])
    result.resetMs = Number(reply[base + 2])
    result.allowed = result.retryAfterMs === 0
    if (result.retryAfterMs > retryAfterMs) retryAfterMs = result.retryAfterMs
  }
  out.retryAfterMs = out.allowed ? 0 : retryAfterMs
  return out
}

export class RedisStore implements BucketStore {
  readonly prefix: string
  private readonly client: RedisClient
  private readonly ownsClient: boolean
  private readonly singleSha = sha1(TOKEN_BUCKET_SCRIPT)
  private readonly multiSha = sha1(TOKEN_BUCKETS_SCRIPT)
  /** Interval and tau (ms) of each policy as the script reads them, by policy index: built once. */
  private readonly policyArgs: Array<[string, string] | undefined> = []

  constructor(options: RedisStoreOptions) {
    this.client = options.client
    this.prefix = options.prefix ?? 'spillway-rl'
    this.ownsClient = options.ownsClient ?? false
  }

  /** Key of one bucket: `{prefix:clientKey}:policy`. The client key is already escaped (keys.ts). */
  bucketKey(policy: BucketPolicy, key: string): string {
    return `{${this.prefix}:${key}}:${policy.storeId}`
  }

  take(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Promise<Decision> {
    const n = policies.length
    const args: string[] = new Array(n * 3 + 1)
    args[n] = String(cost)
    for (let i = 0; i < n; i++) {
      const policy = policies[i] as BucketPolicy
      const policyArgs = this.policyArgs[policy.index] ?? this.argsFor(policy)
      args[i] = this.bucketKey(policy, key)
      args[n + 1 + 2 * i] = policyArgs[0]
      args[n + 2 + 2 * i] = policyArgs[1]
    }
    const script = n === 1 ? TOKEN_BUCKET_SCRIPT : TOKEN_BUCKETS_SCRIPT
    const client = this.client
    return client.evalsha(n === 1 ? this.singleSha : this.multiSha, n, ...args).then(
      (reply) => readReply(reply as number[], n, out),
      (error: unknown) => {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
        // EVAL also loads the script into Redis's cache, so the next EVALSHA succeeds.
        return client.eval(script, n, ...args).then((reply) => readReply(reply as number[], n, out))
      }
    )
  }

  async close(): Promise<void> {
    if (this.ownsClient) {
      try {
        await this.client.quit()
      } catch {
        this.client.disconnect()
      }
    }
  }

  private argsFor(policy: BucketPolicy): [string, string] {
    const intervalMs = 1000 / policy.refillPerSecond
    const args: [string, string] = [String(intervalMs), String(policy.capacity * intervalMs)]
    this.policyArgs[policy.index] = args
    return args
  }
}

function sha1(script: string): string {
  return createHash('sha1').update(script).digest('hex')
}
