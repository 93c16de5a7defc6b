import { RawClient, type Connection } from '@spillway/overload-bench/raw-client'

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

const USER_HEADER = /x-user-id: (\d+)/

/**
 * The benchmark's raw keep-alive client, sending the shop's requests from templates: the
 * generator's "path" names a template, and a request the client gives up on reaches the
 * listener as status -1.
 */
export class ShopClient extends RawClient {
  readonly #templates: Readonly<Record<string, RequestTemplate>>
  readonly #onOutcome: OutcomeListener

  constructor(port: number, templates: Readonly<Record<string, RequestTemplate>>, onOutcome: OutcomeListener, host = '127.0.0.1') {
    super(host, port)
    this.#templates = templates
    this.#onOutcome = onOutcome
  }

  /** The generator's `RawClient.get`: `name` is a template name; `headers` carries `x-user-id`. */
  override get(name: string, headers: string, outcome: (status: number) => void): Connection {
    const template = this.#templates[name]
    if (template === undefined) throw new Error(`no request template ${name}`)
    const user = Number(USER_HEADER.exec(headers)?.[1] ?? 0)
    const body = template.body ?? ''
    const bodyHeaders = template.body === undefined ? '' : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
    const sentAt = performance.now()
    return this.request(
      `${template.method} ${template.target(user)} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\nx-api-key: ${template.apiKey(user)}\r\n${bodyHeaders}${headers}\r\n${body}`,
      (status) => {
        this.#onOutcome(name, status, sentAt, performance.now() - sentAt)
        outcome(status)
      },
      () => this.#onOutcome(name, -1, sentAt, performance.now() - sentAt)
    )
  }

  /** This client as the generator's client option. */
  asRawClient(): RawClient {
    return this
  }
}
