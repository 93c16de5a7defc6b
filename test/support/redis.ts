/**
 * Finds the Redis that tests run against: REDIS_URL, or redis://127.0.0.1:6379.
 * Where none answers, Redis tests skip with a loud message, unless REQUIRE_REDIS=1 (CI sets it),
 * which turns the skip into a failure: a CI run must never pass by skipping them.
 */
import { connect } from 'node:net'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const REDIS_REQUIRED = process.env.REQUIRE_REDIS === '1'

/** True when something at REDIS_URL answers PING within a second. */
export async function redisAnswers(url = REDIS_URL): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve) => {
    const socket = connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())))
  })
}

/**
 * `{ skip: false }` when Redis answers; a loud skip reason when it does not. Throws under
 * REQUIRE_REDIS=1 so the test file fails instead. Use as: `t.test('…', await redisTestOptions(), …)`.
 */
export async function redisTestOptions(): Promise<{ skip: false | string }> {
  if (await redisAnswers()) return { skip: false }
  const message = `NO REDIS at ${REDIS_URL}: Redis tests SKIPPED. Start redis-server or set REDIS_URL.`
  if (REDIS_REQUIRED) throw new Error(`${message} (REQUIRE_REDIS=1 makes this a failure)`)
  console.error(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n`)
  return { skip: message }
}
