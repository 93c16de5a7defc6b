/**
 * Token buckets shared through Redis: one `EVALSHA` per decision (the script is sent in full only
 * when Redis answers NOSCRIPT, e.g. after a restart), Redis's clock, hash-tagged keys so that all
 * policies of one client land in one Redis Cluster slot, TTLs so idle buckets vanish.
 */
import { createHash } from 'node:crypto'
import type { Redis, Cluster } from 'ioredis'
import { TOKEN_BUCKET_SCRIPT } from './redis-script.js'
import type { BucketPolicy, BucketStore, Decision } from './policy.js'

export type RedisClient = Redis | Cluster

export interface RedisStoreOptions {
  client: RedisClient
  /** Start of every key; the `{prefix:key}` part is the Cluster hash tag. */
  prefix?: string
  /** Quit the client on close (when the plugin created it from a URL). */
  ownsClient?: boolean
}

type ScriptCall = (script: string, keyCount: number, ...args: string[]) => Promise<unknown>

export class RedisStore implements BucketStore {
  readonly prefix: string
  private readonly client: RedisClient
  private readonly ownsClient: boolean
  private readonly sha = createHash('sha1').update(TOKEN_BUCKET_SCRIPT).digest('hex')
  /** Capacity/rate arguments per policy list, built once per route rather than per request. */
  private readonly policyArgs = new WeakMap<readonly BucketPolicy[], string[]>()

  constructor(options: RedisStoreOptions) {
    this.client = options.client
    this.prefix = options.prefix ?? 'spillway-rl'
    this.ownsClient = options.ownsClient ?? false
  }

  /** Key of one bucket: `{prefix:clientKey}:policy`. The client key is already escaped (keys.ts). */
  bucketKey(policy: BucketPolicy, key: string): string {
    return `{${this.prefix}:${key}}:${policy.storeId}`
  }

  async take(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Promise<Decision> {
    const n = policies.length
    const args: string[] = new Array(n)
    for (let i = 0; i < n; i++) args[i] = this.bucketKey(policies[i] as BucketPolicy, key)
    args.push(String(cost))
    for (const arg of this.argsFor(policies)) args.push(arg)
    const reply = await this.run(n, args) as number[]
    out.allowed = reply[0] === 1
    out.source = 'store'
    let retryAfterMs = 0
    for (let i = 0; i < n; i++) {
      const result = out.results[i]
      if (result === undefined) continue
      const base = 1 + i * 4
      result.allowed = reply[base] === 1
      result.remaining = Number(reply[base + 1])
      result.retryAfterMs = Number(reply[base + 2])
      result.resetMs = Number(reply[base + 3])
      if (result.retryAfterMs > retryAfterMs) retryAfterMs = result.retryAfterMs
    }
    out.retryAfterMs = out.allowed ? 0 : retryAfterMs
    return out
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

  private async run(keyCount: number, args: string[]): Promise<unknown> {
    const client = this.client as unknown as { evalsha: ScriptCall, eval: ScriptCall }
    try {
      return await client.evalsha(this.sha, keyCount, ...args)
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
      // EVAL also loads the script into Redis's cache, so the next EVALSHA succeeds.
      return await client.eval(TOKEN_BUCKET_SCRIPT, keyCount, ...args)
    }
  }

  private argsFor(policies: readonly BucketPolicy[]): string[] {
    let args = this.policyArgs.get(policies)
    if (args === undefined) {
      args = []
      for (const policy of policies) args.push(String(policy.capacity), String(policy.refillPerSecond / 1000))
      this.policyArgs.set(policies, args)
    }
    return args
  }
}
