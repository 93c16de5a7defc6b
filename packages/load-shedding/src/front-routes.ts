/** The path of a request URL: what precedes its query (`/` for a request without a URL). */
export function urlPath(url: string | undefined): string {
  if (url === undefined) return '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** A known route whose requests are never shed. */
export const FRONT_BYPASS = -1
/** A known route without a priority of its own: the trusted header's, or the default. */
export const FRONT_DEFAULT_PRIORITY = -2

/**
 * The routes the front door (`front` option) can decide for before Fastify routes the request:
 * static URLs by method, each with its priority rank, `FRONT_BYPASS` or `FRONT_DEFAULT_PRIORITY`.
 * A request that matches none of them exactly — a parametric or wildcard route, a constrained
 * one, a URL Fastify would normalize (trailing slash, case) — is left to the `onRequest` hook,
 * which decides as if there were no front door: the front door only makes refusals cheaper.
 */
export class FrontRoutes {
  readonly #byMethod = new Map<string, Map<string, number>>()

  /** Registers a route; URLs with parameters or wildcards are left out. */
  add(methods: string | readonly string[], url: string, entry: number): void {
    if (url.includes(':') || url.includes('*')) return
    for (const method of typeof methods === 'string' ? [methods] : methods) {
      let paths = this.#byMethod.get(method)
      if (paths === undefined) this.#byMethod.set(method, paths = new Map())
      paths.set(url, entry)
    }
  }

  /** The entry of the request's route, or undefined when the front door cannot tell. */
  find(method: string | undefined, url: string | undefined): number | undefined {
    if (method === undefined || url === undefined) return undefined
    return this.#byMethod.get(method)?.get(urlPath(url))
  }
}
