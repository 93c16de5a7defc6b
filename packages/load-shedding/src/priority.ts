import { PRIORITY_RANK, isPriority, type Priority } from '@spillway/latency-window'
import type { FastifyRequest } from 'fastify'

export interface PrioritySources {
  priority: ((request: FastifyRequest) => Priority | undefined) | undefined
  priorityHeader: string | undefined
  defaultRank: number
}

/**
 * The rank of a request whose route names no priority: the user's function first, then the
 * trusted header (only when one was named: a client must not be able to promote itself by sending
 * a header nobody vouches for), then the default. A value that is not a priority falls through.
 */
export function createPriorityResolver(sources: PrioritySources): (request: FastifyRequest) => number {
  const { priority, priorityHeader, defaultRank } = sources
  return function resolvePriority(request) {
    if (priority !== undefined) {
      const named = priority(request)
      if (isPriority(named)) return PRIORITY_RANK[named]
    }
    if (priorityHeader !== undefined) {
      const header = request.headers[priorityHeader]
      if (isPriority(header)) return PRIORITY_RANK[header]
    }
    return defaultRank
  }
}
