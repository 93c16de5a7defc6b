/**
 * A private redis-server for outage and restart tests — never the shared one, which other tests
 * use — on a port nobody else holds.
 */
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'

const run = promisify(execFile)

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

async function pings(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'ping'])
    return stdout.trim() === 'PONG'
  } catch {
    return false
  }
}

/** Starts redis-server on `port` with no persistence; resolves once it answers PING. */
export async function startRedisServer(port: number): Promise<void> {
  await run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes'])
  for (let i = 0; i < 100; i++) {
    if (await pings(port)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis-server on port ${port} did not start`)
}

/** Stops the redis-server a test started on `port`; quiet if it is already down. */
export async function stopRedisServer(port: number): Promise<void> {
  try {
    await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave'])
  } catch {}
  for (let i = 0; i < 100 && await pings(port); i++) await new Promise((resolve) => setTimeout(resolve, 50))
}
