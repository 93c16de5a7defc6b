import net from 'node:net'

/** What became of one request: the response status, or 0 when the connection failed. */
export type Outcome = (status: number) => void

const HEADER_END = Buffer.from('\r\n\r\n')
const CHUNKED_END = Buffer.from('0\r\n\r\n')

/**
 * One keep-alive connection, one request at a time (no pipelining), parsing only the status line
 * and the framing. A load generator built on `http.request` spends ~30 µs of CPU per request; on
 * a 2-core machine shared with the server under test, that CPU comes out of the server's capacity
 * and grows with the offered load, which would bias every step above 1×. This costs a few µs.
 */
export class Connection {
  readonly socket: net.Socket
  /** Owned by one sender (a closed-loop client) rather than lent out by the pool between requests. */
  dedicated = false
  #buffer: Buffer = Buffer.alloc(0)
  #outcome: Outcome | undefined
  #onAbandon: (() => void) | undefined
  #closed = false
  #pool: RawClient

  constructor(pool: RawClient, host: string, port: number) {
    this.#pool = pool
    this.socket = net.connect({ host, port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.socket.on('error', () => this.#fail())
    this.socket.on('close', () => this.#fail())
  }

  get closed(): boolean {
    return this.#closed
  }

  send(head: string, outcome: Outcome, onAbandon?: () => void): void {
    this.#outcome = outcome
    this.#onAbandon = onAbandon
    this.socket.write(head)
  }

  /**
   * Abandons the request (client timeout): the connection is closed, never reused. The outcome is
   * not called; `onAbandon`, when the sender gave one, is.
   */
  abort(): void {
    const onAbandon = this.#onAbandon
    this.#outcome = undefined
    this.#onAbandon = undefined
    this.#closed = true
    this.socket.destroy()
    this.#pool.forget(this)
    onAbandon?.()
  }

  #fail(): void {
    this.#closed = true
    this.#pool.forget(this)
    const outcome = this.#outcome
    this.#outcome = undefined
    this.#onAbandon = undefined
    outcome?.(0)
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const headerEnd = this.#buffer.indexOf(HEADER_END)
    if (headerEnd === -1) return
    const head = this.#buffer.toString('latin1', 0, headerEnd).toLowerCase()
    const status = Number(head.slice(9, 12))
    const lengthAt = head.indexOf('\r\ncontent-length:')
    let total: number
    if (lengthAt !== -1) {
      total = headerEnd + 4 + Number.parseInt(head.slice(lengthAt + 17, head.indexOf('\r\n', lengthAt + 2) >>> 0), 10)
      if (this.#buffer.length < total) return
    } else if (head.includes('transfer-encoding: chunked')) {
      const end = this.#buffer.indexOf(CHUNKED_END, headerEnd + 4)
      if (end === -1) return
      total = end + CHUNKED_END.length
    } else {
      total = headerEnd + 4
    }
    this.#buffer = this.#buffer.subarray(total)
    const outcome = this.#outcome
    this.#outcome = undefined
    this.#onAbandon = undefined
    const reusable = !head.includes('\r\nconnection: close')
    if (!reusable) this.abort()
    else if (!this.dedicated) this.#pool.release(this)
    outcome?.(status)
  }
}

/** A pool of raw keep-alive HTTP/1.1 connections to one server; opens as many as are needed. */
export class RawClient {
  readonly host: string
  readonly port: number
  readonly #idle: Connection[] = []
  readonly #all = new Set<Connection>()

  constructor(host: string, port: number) {
    this.host = host
    this.port = port
  }

  /** Sends `GET path`; returns a handle whose `abort()` gives up on it (the connection is closed). */
  get(path: string, headers: string, outcome: Outcome): Connection {
    return this.request(`GET ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n${headers}\r\n`, outcome)
  }

  /**
   * Sends `GET path` and calls `outcome` exactly once: with the status, or with 0 when the
   * connection failed or no answer came within `timeoutMs` (the connection is then closed).
   */
  getWithin(path: string, headers: string, timeoutMs: number, outcome: Outcome): void {
    let done = false
    const finish = (status: number): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      outcome(status)
    }
    const connection = this.get(path, headers, finish)
    const timer = setTimeout(() => {
      connection.abort()
      finish(0)
    }, timeoutMs)
  }

  /** Sends a whole request (`head`: request line, headers, blank line, body) on an idle connection. */
  request(head: string, outcome: Outcome, onAbandon?: () => void): Connection {
    let connection = this.#idle.pop()
    while (connection !== undefined && connection.closed) connection = this.#idle.pop()
    if (connection === undefined) {
      connection = new Connection(this, this.host, this.port)
      this.#all.add(connection)
    }
    connection.send(head, outcome, onAbandon)
    return connection
  }

  /**
   * Opens `count` idle connections up front, as a fleet of clients with persistent connections
   * would have: a load step then measures the server, not how fast the kernel completes handshakes.
   */
  async prewarm(count: number): Promise<void> {
    const opened = Array.from({ length: count }, () => {
      const connection = new Connection(this, this.host, this.port)
      this.#all.add(connection)
      return new Promise<void>((resolve) => {
        connection.socket.once('connect', () => { this.#idle.push(connection); resolve() })
        connection.socket.once('error', () => resolve())
      })
    })
    await Promise.all(opened)
  }

  /** A new connection for one sender alone: it is never handed to `request()`; `close()` still ends it. */
  open(): Connection {
    const connection = new Connection(this, this.host, this.port)
    connection.dedicated = true
    this.#all.add(connection)
    return connection
  }

  release(connection: Connection): void {
    this.#idle.push(connection)
  }

  forget(connection: Connection): void {
    this.#all.delete(connection)
  }

  close(): void {
    for (const connection of this.#all) connection.abort()
    this.#all.clear()
    this.#idle.length = 0
  }
}
