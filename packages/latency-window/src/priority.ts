/** Request priorities, most important first. Shared by the load shedder and the degradation controller. */
export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const

export type Priority = (typeof PRIORITIES)[number]

/** 0 for `critical` up to 3 for `low`: a higher rank is shed first. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = Object.freeze({
  critical: 0,
  high: 1,
  normal: 2,
  low: 3
})

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && Object.hasOwn(PRIORITY_RANK, value)
}
