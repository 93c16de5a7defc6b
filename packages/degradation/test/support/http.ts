/**
 * Real-HTTP helpers for the root integration tests, which cannot resolve this package's dev
 * dependencies themselves: Fastify, and a keep-alive GET.
 */
import { Agent, request } from 'node:http'

export { default as Fastify } from 'fastify'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

export const agent = new Agent({ keepAlive: true, maxSockets: 16 })

export function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `predicate` every 10 ms; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
