import { burnCpu } from '@spillway/overload-bench/scenario-app'

/**
 * CPU time each piece of the shop's work costs, ms. Together with the database queries these set
 * the shop's capacity; `recommendations` (the first feature to go) is the most expensive extra.
 */
export const CPU_MS = {
  checkout: 1,
  product: 0.5,
  recommendations: 1,
  search: 1,
  searchSuggestions: 0.5,
  analytics: 0.3
} as const

/** Burns `ms` of CPU, given the iterations of `burnCpu` that take 1 ms on this machine. */
export function cpuWork(ms: number, iterationsPerMs: number): void {
  burnCpu(Math.round(ms * iterationsPerMs))
}

export { calibrateCpuWork } from '@spillway/overload-bench/scenario-app'
