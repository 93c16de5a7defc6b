import { AimdLimit } from '../../src/aimd-limit.js'
import type { PriorityLimiterOptions as LoadShedderOptions } from '../../src/priority-limiter.js'

/** The shedder's options as the plugin's defaults make them, with 4 cohorts per priority and an AIMD limit of 100. */
export function shedderOptions(overrides: Partial<LoadShedderOptions> = {}): LoadShedderOptions {
  return {
    limit: new AimdLimit({ initialLimit: 100, minLimit: 1 }),
    mode: 'enforce',
    cohorts: 4,
    shares: [2, 1.25, 1, 0.8],
    targetDelayMs: 25,
    minUtilization: 0.8,
    maxUtilization: 0.95,
    maxQueueMs: [Infinity, 75, 50, 25],
    tightenRatio: 0.1,
    maxTightenRatio: 0.5,
    relaxRatio: 0.05,
    queueHeadroom: 0.5,
    signals: {},
    ...overrides
  }
}
