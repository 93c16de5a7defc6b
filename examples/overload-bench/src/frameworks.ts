import type { Scenario } from './scenario-app.js'

/** The framework the target servers run on. */
export type Framework = 'fastify' | 'express'

/**
 * The Express targets, served by packages/express/bench/scenario-app.ts (named here so that the
 * benchmark's parent process never loads Express).
 */
export const EXPRESS_TARGETS = ['unprotected', 'express-rate-limit', 'spillway', 'spillway-front'] as const

export function parseFramework(value: string | undefined): Framework {
  const framework = value ?? 'fastify'
  if (framework !== 'fastify' && framework !== 'express') throw new Error(`--framework must be fastify or express, got ${framework}`)
  return framework
}

/**
 * The scenarios a framework can run: the Express scenario app has no PostgreSQL pool (it would run
 * `pg` as the simulated pool and report it under the wrong name), so `pg` is left out, loudly.
 */
export function scenariosFor(framework: Framework, scenarios: readonly Scenario[]): Scenario[] {
  if (framework === 'fastify' || !scenarios.includes('pg')) return [...scenarios]
  console.log("!! the Express targets have no 'pg' scenario: skipping it")
  return scenarios.filter((scenario) => scenario !== 'pg')
}
