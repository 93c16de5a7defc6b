import net from 'node:net'
import type { OpenLoopOptions } from '@spillway/overload-bench/open-loop'

type RawClient = NonNullable<OpenLoopOptions['client']>

/**
 * What the demo's client sends for one kind of request. The open-loop generator of the overload
 * benchmark only sends `GET <path>`; it takes its client as an option, so this client reads the
 * generator's "path" as the name of a template and sends the shop's real request (POST with a
 * JSON body where the route wants one, the caller's API key).
 */
export interface RequestTemplate {
  method: 'GET' | 'POST'
  /** The request target, from the generator's user number (e.g. a product id). */
  target: (user: number) => string
  body?: string
  /** The `x-api-key` header, from the user number. */
  apiKey: (user: number) => string
}

/**
 * The outcome of one request: its template, status (0: connection failed, -1: abandoned by the
 * client), when it was sent (`performance.now()`) and its latency, ms.
 */
export type OutcomeListener = (template: string, status: number, sentAtMs: number, latencyMs: number) => void

const HEADER_END = Buffer.from('\r\n\r\n')
const CHUNKED_END = Buffer.from('0\r\n\r\n')
const USER_HEADER = /x-user-id: (\d+)/

/**
 * One keep-alive connection, one request at a time, parsing only the status line and the framing
 * (the same economy as the benchmark's raw client: the generator shares two cores with the server,
 * and `http.request` would take ~30 µs of them per request).
 */
class Connection {
  readonly socket: net.Socket
  #buffer: Buffer = Buffer.alloc(0)
  #outcome: ((status: number) => void) | undefined
  #closed = false
  readonly #pool: ShopClient

  constructor(pool: ShopClient, host: string, port: number) {
    this.#pool = pool
    this.socket = net.connect({ host, port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.socket.on('error', () => this.#fail())
    this.socket.on('close', () => this.#fail())
  }

  get closed(): boolean {
    return this.#closed
  }

  send(head: string, outcome: (status: number) => void): void {
    this.#outcome = outcome
    this.socket.write(head)
  }

  /** The client timed out: the request is abandoned and the connection closed, never reused. */
  abort(): void {
    const outcome = this.#outcome
    this.#outcome = undefined
    this.#closed = true
    this.socket.destroy()
    this.#pool.forget(this)
    outcome?.(-1)
  }

  #fail(): void {
    this.#closed = true
    this.#pool.forget(this)
    const outcome = this.#outcome
    this.#outcome = undefined
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
    if (head.includes('\r\nconnection: close')) {
      this.#closed = true
      this.socket.destroy()
      this.#pool.forget(this)
    } else {
      this.#pool.release(this)
    }
    outcome?.(status)
  }
}

/** A pool of raw keep-alive connections that sends the shop's requests from templates. */
export class ShopClient {
  readonly host: string
  readonly port: number
  readonly #templates: Readonly<Record<string, RequestTemplate>>
  readonly #onOutcome: OutcomeListener
  readonly #idle: Connection[] = []
  readonly #all = new Set<Connection>()

  constructor(port: number, templates: Readonly<Record<string, RequestTemplate>>, onOutcome: OutcomeListener, host = '127.0.0.1') {
    this.host = host
    this.port = port
    this.#templates = templates
    this.#onOutcome = onOutcome
  }

  /** The generator's `RawClient` interface: `name` is a template name; `headers` carries `x-user-id`. */
  get(name: string, headers: string, outcome: (status: number) => void): Connection {
    const template = this.#templates[name]
    if (template === undefined) throw new Error(`no request template ${name}`)
    const user = Number(USER_HEADER.exec(headers)?.[1] ?? 0)
    let connection = this.#idle.pop()
    while (connection !== undefined && connection.closed) connection = this.#idle.pop()
    if (connection === undefined) {
      connection = new Connection(this, this.host, this.port)
      this.#all.add(connection)
    }
    const body = template.body ?? ''
    const bodyHeaders = template.body === undefined ? '' : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
    const sentAt = performance.now()
    connection.send(
      `${template.method} ${template.target(user)} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\nx-api-key: ${template.apiKey(user)}\r\n${bodyHeaders}${headers}\r\n${body}`,
      (status) => {
        this.#onOutcome(name, status, sentAt, performance.now() - sentAt)
        if (status !== -1) outcome(status)
      }
    )
    return connection
  }

  /** Opens `count` idle connections up front, as a fleet of clients with persistent connections would have. */
  async prewarm(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => {
      const connection = new Connection(this, this.host, this.port)
      this.#all.add(connection)
      return new Promise<void>((resolve) => {
        connection.socket.once('connect', () => { this.#idle.push(connection); resolve() })
        connection.socket.once('error', () => resolve())
      })
    }))
  }

  release(connection: Connection): void {
    this.#idle.push(connection)
  }

  forget(connection: Connection): void {
    this.#all.delete(connection)
  }

  close(): void {
    for (const connection of [...this.#all]) connection.abort()
    this.#all.clear()
    this.#idle.length = 0
  }

  /** This client, typed as the generator's client option (the generator only calls `get`). */
  asRawClient(): RawClient {
    return this as unknown as RawClient
  }
}
