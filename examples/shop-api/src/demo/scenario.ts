import type { Phase, RequestKind } from '@spillway/overload-bench/open-loop'
import type { RequestTemplate } from './shop-client.js'

/** How the demo groups requests in its figures: by the priority of their route, plus the abusive client and health checks. */
export const CLASSES = ['high', 'normal', 'low', 'bot', 'health'] as const
export type RequestClass = (typeof CLASSES)[number]

const CHECKOUT_BODY = JSON.stringify({ items: [{ productId: 3, quantity: 1 }, { productId: 17, quantity: 2 }] })

/** The shop's requests, by template name (the generator's "path"), with the class each counts in. */
export const TEMPLATES: Readonly<Record<string, RequestTemplate & { class: RequestClass }>> = {
  checkout: { class: 'high', method: 'POST', target: () => '/checkout', body: CHECKOUT_BODY, apiKey: (user) => `user-${user}` },
  product: { class: 'normal', method: 'GET', target: (user) => `/products/${(user % 1000) + 1}`, apiKey: (user) => `user-${user}` },
  search: { class: 'normal', method: 'GET', target: (user) => `/search?q=item${user % 100}`, apiKey: (user) => `user-${user}` },
  analytics: { class: 'low', method: 'POST', target: () => '/analytics', body: '{"event":"view"}', apiKey: (user) => `user-${user}` },
  // One client retrying checkout in a loop with a single API key: what the per-key rate limit is for.
  'checkout-bot': { class: 'bot', method: 'POST', target: () => '/checkout', body: CHECKOUT_BODY, apiKey: () => 'scraper-bot' },
  health: { class: 'health', method: 'GET', target: () => '/health', apiKey: () => 'monitor' }
}

/** Shares of the traffic; health checks come on top, at a fixed rate. */
export const MIX: readonly RequestKind[] = [
  { name: 'checkout', path: 'checkout', weight: 10 },
  { name: 'product', path: 'product', weight: 40 },
  { name: 'search', path: 'search', weight: 20 },
  { name: 'analytics', path: 'analytics', weight: 27 },
  { name: 'checkout-bot', path: 'checkout-bot', weight: 3 }
]
export const HEALTH_MIX: readonly RequestKind[] = [{ name: 'health', path: 'health', weight: 1 }]
export const HEALTH_PER_SECOND = 10

export interface ScriptedPhase extends Phase {
  /** Offered load as a multiple of the measured capacity. */
  loadRatio: number
  /** Database query-time multiplier during the phase. */
  databaseSlowdown: number
  label: string
}

/** Steady traffic, a flash crowd, a slow-database episode, recovery: ~38 s per target. */
export function scriptedPhases(capacityPerSecond: number, scale = 1): ScriptedPhase[] {
  const phase = (name: string, label: string, loadRatio: number, seconds: number, databaseSlowdown: number): ScriptedPhase =>
    ({ name, label, loadRatio, databaseSlowdown, ratePerSecond: Math.max(1, Math.round(capacityPerSecond * loadRatio)), durationMs: Math.round(seconds * 1000 * scale) })
  return [
    phase('steady', 'steady traffic (0.6×)', 0.6, 8, 1),
    phase('flash-crowd', 'flash crowd (3.5×)', 3.5, 12, 1),
    phase('slow-db', 'slow database (0.8×, queries 8× slower)', 0.8, 10, 8),
    phase('recovery', 'recovery (0.6×)', 0.6, 8, 1)
  ]
}

/**
 * The retry storm that follows the scripted phases: a crowd of shoppers browsing in a closed loop,
 * each sending again the moment it gets any answer, a 503 or a 429 included (a naive SDK, an
 * impatient user), giving up and reconnecting at the 1 s timeout. Unprotected, the server answers
 * as fast as it serves; protected, a refusal answered at once would come straight back.
 */
export const STORM_CLIENTS = 400
export const STORM_SECONDS = 8
export const STORM_MIX: readonly RequestKind[] = [
  { name: 'product', path: '/products/42', weight: 50 },
  { name: 'product-2', path: '/products/7', weight: 20 },
  { name: 'search', path: '/search?q=item3', weight: 30 }
]
