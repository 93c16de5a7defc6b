import { get, type Agent, type IncomingMessage } from 'node:http'

/** An open server-sent-events stream, as a browser's EventSource would hold it. */
export interface EventStream {
  /** The response's status and content type, once its headers arrived. */
  readonly response: IncomingMessage
  /** The `data:` lines received so far. */
  readonly events: string[]
  /** Resolves once `count` events have arrived in all. */
  received(count: number): Promise<void>
  /** The client goes away. */
  close(): void
}

/** Opens a stream with `http.get` and resolves once its headers arrived (not before: that is the point). */
export function openEventStream(port: number, path: string, agent?: Agent): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path, agent: agent ?? false, headers: { accept: 'text/event-stream' } }, (response) => {
      const events: string[] = []
      let buffered = ''
      let waiting: { count: number, resolve: () => void } | undefined
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffered += chunk
        let end = buffered.indexOf('\n\n')
        while (end >= 0) {
          for (const line of buffered.slice(0, end).split('\n')) if (line.startsWith('data:')) events.push(line.slice(5).trim())
          buffered = buffered.slice(end + 2)
          end = buffered.indexOf('\n\n')
        }
        if (waiting !== undefined && events.length >= waiting.count) waiting.resolve()
      })
      response.on('error', () => {})
      resolve({
        response,
        events,
        received: (count) => events.length >= count
          ? Promise.resolve()
          : new Promise((done) => { waiting = { count, resolve: done } }),
        close: () => { request.destroy() }
      })
    })
    request.on('error', reject)
  })
}
