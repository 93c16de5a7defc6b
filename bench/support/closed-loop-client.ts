/**
 * The load the throughput benchmarks send: raw keep-alive sockets, each with one `GET /` in flight
 * at a time (a closed loop), lighter than an HTTP client library so that the client is less of
 * the bottleneck. Responses must carry a Content-Length (Fastify's and Express's do).
 */
import { connect } from 'node:net'

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')

export interface LoadCounts { done: number, errors: number }

/**
 * One connection, sending the next request when the previous response is complete and `more()`
 * still says so. A status outside `statuses` counts as an error.
 */
export function keepAliveConnection(
  port: number, more: () => boolean, counts: LoadCounts, statuses: readonly string[]
): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    let buffered = ''
    socket.setEncoding('latin1')
    socket.on('connect', () => socket.write(REQUEST))
    socket.on('data', (chunk: string) => {
      buffered += chunk
      for (;;) {
        const headerEnd = buffered.indexOf('\r\n\r\n')
        if (headerEnd < 0) return
        const match = /content-length: (\d+)/i.exec(buffered.slice(0, headerEnd))
        const total = headerEnd + 4 + Number(match?.[1] ?? 0)
        if (buffered.length < total) return
        if (!statuses.includes(buffered.slice(9, 12))) counts.errors++
        buffered = buffered.slice(total)
        counts.done++
        if (!more()) {
          socket.end()
          return
        }
        socket.write(REQUEST)
      }
    })
    socket.on('error', () => {
      counts.errors++
      resolve()
    })
    socket.on('close', () => resolve())
  })
}

/** Exactly `requests` requests over `connections` connections. */
export async function sendRequests(port: number, requests: number, connections: number, statuses: readonly string[]): Promise<LoadCounts> {
  const counts = { done: 0, errors: 0 }
  // Each connection's first request is sent unasked; every later one is claimed here.
  let unclaimed = requests - connections
  const more = () => unclaimed-- > 0
  await Promise.all(Array.from({ length: Math.min(connections, requests) }, () => keepAliveConnection(port, more, counts, statuses)))
  return counts
}
