import { EventEmitter } from 'node:events'
import t from 'tap'
import { declareFeatures } from '../src/features.js'
import { Overrides } from '../src/overrides.js'
import { RedisOverrides, type RedisClientLike } from '../src/redis-overrides.js'

/** An in-memory stand-in for one Redis server: a key space and a pub/sub bus, which can go down. */
class FakeRedis {
  readonly keys = new Map<string, string>()
  readonly bus = new EventEmitter()
  up = true

  client(): RedisClientLike & { subscribers: (EventEmitter & { disconnect(): void })[] } {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the client's methods have their own `this`
    const server = this
    const fail = async () => {
      throw new Error('Connection is closed.')
    }
    const subscribers: (EventEmitter & { disconnect(): void })[] = []
    return {
      subscribers,
      async get(key) {
        if (!server.up) return await fail()
        return server.keys.get(key) ?? null
      },
      async set(key, value) {
        if (!server.up) return await fail()
        server.keys.set(key, value)
        return 'OK'
      },
      async publish(channel, message) {
        if (!server.up) return await fail()
        server.bus.emit(channel, message)
        return 1
      },
      duplicate() {
        const subscriber = Object.assign(new EventEmitter(), {
          async subscribe(channel: string) {
            server.bus.on(channel, (message: string) => subscriber.emit('message', channel, message))
            setImmediate(() => subscriber.emit('ready'))
            return 1
          },
          disconnect() {
            subscriber.removeAllListeners()
          }
        })
        subscribers.push(subscriber)
        return subscriber
      }
    }
  }
}

const features = declareFeatures([{ name: 'recommendations', offAtLevel: 1 }, { name: 'search', offAtLevel: 2 }], 3)
const tick = () => new Promise((resolve) => setImmediate(resolve))

function logger() {
  const lines: string[] = []
  return { lines, warn: (_: object, message: string) => lines.push(`warn ${message}`), info: (_: object, message: string) => lines.push(`info ${message}`) }
}

t.test('an override on one instance reaches the others; a late starter reads it from the key', async (t) => {
  const redis = new FakeRedis()
  const a = new Overrides(features, 3)
  const b = new Overrides(features, 3)
  const syncA = new RedisOverrides({ client: redis.client(), prefix: 'test:' }, a, logger())
  const syncB = new RedisOverrides({ client: redis.client(), prefix: 'test:' }, b, logger())
  syncA.start()
  syncB.start()
  t.teardown(() => { syncA.stop(); syncB.stop() })
  await tick()
  a.forceLevel(2, { reason: 'drill' })
  a.pin('search', true)
  await tick()
  t.equal(b.forcedLevel, 2)
  t.equal(b.pinOf(1), 1)
  t.equal(syncA.key, 'test:overrides')
  t.equal(syncA.channel, 'test:changes')
  const late = new Overrides(features, 3)
  const syncLate = new RedisOverrides({ client: redis.client(), prefix: 'test:' }, late, logger())
  syncLate.start()
  t.teardown(() => syncLate.stop())
  await tick()
  await tick()
  t.equal(late.forcedLevel, 2, 'read from the key on ready')
  b.clearLevel()
  await tick()
  t.equal(a.forcedLevel, undefined, 'B → A')
  t.equal(late.forcedLevel, undefined)
})

t.test('Redis down: local decisions still apply, the last state is kept, errors are logged once and never thrown', async (t) => {
  const redis = new FakeRedis()
  const a = new Overrides(features, 3)
  const b = new Overrides(features, 3)
  const logA = logger()
  const syncA = new RedisOverrides({ client: redis.client() }, a, logA)
  const syncB = new RedisOverrides({ client: redis.client() }, b, logger())
  syncA.start()
  syncB.start()
  t.teardown(() => { syncA.stop(); syncB.stop() })
  await tick()
  a.forceLevel(1)
  await tick()
  t.equal(b.forcedLevel, 1)
  redis.up = false
  a.forceLevel(3)
  a.pin('recommendations', true)
  await tick()
  await syncA.refresh()
  t.equal(a.forcedLevel, 3, 'the local decision applies')
  t.equal(b.forcedLevel, 1, 'the other instance keeps its last known state')
  t.equal(syncA.errors, 3)
  t.same(logA.lines, ['warn spillway degradation: Redis unavailable, keeping the last known overrides'])
  redis.up = true
  await syncB.refresh()
  t.equal(b.forcedLevel, 1, 'nothing newer in the key yet')
  a.forceLevel(2)
  await tick()
  t.equal(b.forcedLevel, 2, 'sharing resumes')
  t.same(logA.lines.at(-1), 'info spillway degradation: Redis available again')
})

t.test('garbage on the channel or in the key is ignored', async (t) => {
  const redis = new FakeRedis()
  const a = new Overrides(features, 3)
  const sync = new RedisOverrides({ client: redis.client(), prefix: 'g:' }, a, logger())
  redis.keys.set('g:overrides', '{not json')
  sync.start()
  t.teardown(() => sync.stop())
  await tick()
  redis.bus.emit('g:changes', 'nope')
  redis.bus.emit('g:changes', JSON.stringify({ origin: 'x', state: { level: { level: 1, expiresAt: null }, pins: {}, updatedAt: 'soon' } }))
  t.equal(a.forcedLevel, undefined)
})

t.test('a client whose duplicate() throws is reported, not thrown', async (t) => {
  const log = logger()
  const client = { ...new FakeRedis().client(), duplicate: () => { throw new Error('no') } }
  const sync = new RedisOverrides({ client }, new Overrides(features, 3), log)
  sync.start()
  sync.stop()
  t.equal(sync.errors, 1)
})

t.test('the key is re-read every refreshIntervalMs, catching a missed message', async (t) => {
  const redis = new FakeRedis()
  const a = new Overrides(features, 3)
  const sync = new RedisOverrides({ client: redis.client(), prefix: 'r:', refreshIntervalMs: 20 }, a, logger())
  sync.start()
  t.teardown(() => sync.stop())
  await tick()
  redis.keys.set('r:overrides', JSON.stringify({ level: { level: 2, expiresAt: null }, pins: {}, updatedAt: Date.now() }))
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(a.forcedLevel, 2)
})
