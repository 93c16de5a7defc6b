import { PRIORITY_RANK, isPriority, type Priority } from '@spillway/latency-window/core'
import type { IncomingHttpHeaders } from 'node:http'

export interface PrioritySources<Req> {
  priority: ((request: Req) => Priority | undefined) | undefined
  priorityHeader: string | undefined
  defaultRank: number
}

/**
 * The rank of a request whose route names no priority: the user's function first, then the
 * trusted header (only when one was named: a client must not be able to promote itself by sending
 * a header nobody vouches for), then the default. A value that is not a priority falls through.
 */
export function createPriorityResolver<Req extends { headers: IncomingHttpHeaders }>(
  sources: PrioritySources<Req>
): (request: Req) => number {
  const { priority, priorityHeader, defaultRank } = sources
  return function resolvePriority(request) {
    if (priority !== undefined) {
      const named = priority(request)
      if (isPriority(named)) return PRIORITY_RANK[named]
    }
    return headerOrDefaultRank(request.headers, priorityHeader, defaultRank)
  }
}

/**
 * The rank the trusted header names (only when one was named), else the default: the end of every
 * priority resolution, including the front doors', which have no framework request yet.
 */
export function headerOrDefaultRank(headers: IncomingHttpHeaders, priorityHeader: string | undefined, defaultRank: number): number {
  if (priorityHeader !== undefined) {
    const header = headers[priorityHeader]
    if (isPriority(header)) return PRIORITY_RANK[header]
  }
  return defaultRank
}
