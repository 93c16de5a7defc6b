import { channel } from 'node:diagnostics_channel'
import { PRIORITIES } from '@spillway/latency-window/core'
import type { Refusal } from './decision.js'

/** `diagnostics_channel` names: one message per refused request, one per control step. */
export const SHED_CHANNEL = 'spillway:load-shedding:shed'
export const UPDATE_CHANNEL = 'spillway:load-shedding:update'

const shedChannel = channel(SHED_CHANNEL)

/**
 * Publishes a refusal (in shadow mode: one that would have been) on `SHED_CHANNEL` as
 * `{ request, priority, reason, shadow }` — built only when someone subscribes. `request` is the
 * framework's request, or Node's when a front door refused it.
 */
export function publishShed(request: unknown, rank: number, refusal: Refusal, shadow: boolean): void {
  if (shedChannel.hasSubscribers) {
    shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: refusal.reason, shadow })
  }
}
