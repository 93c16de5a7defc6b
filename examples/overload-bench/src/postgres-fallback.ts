import pg from 'pg'
import type { Scenario } from './scenario-app.js'

/**
 * Whether PostgreSQL at `url` answers `SELECT 1` within `timeoutMs`; when it does not, why
 * (refused, unknown database, authentication), so that the fallback can say so.
 */
export async function postgresAnswers(url: string, timeoutMs = 1000): Promise<{ ok: true } | { ok: false, reason: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  // A server that goes away after connecting would otherwise raise an unhandled 'error'.
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: describeError(error) }
  } finally {
    await client.end().catch(() => {})
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  // A refused connection to a name with two addresses is an AggregateError with an empty message.
  if (error.message !== '') return error.message
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : error.name
}

/** The URL without its password, for messages. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(an unparsable DATABASE_URL)'
  }
}

/**
 * The scenarios to run, with `pg` replaced by the simulated pool (`io`) when PostgreSQL does not
 * answer: the benchmark still measures an IO-bound server, and says loudly which one. `io` runs
 * once even if it was asked for as well.
 */
export async function withPostgresFallback(scenarios: readonly Scenario[], url: string): Promise<Scenario[]> {
  if (!scenarios.includes('pg')) return [...scenarios]
  const probe = await postgresAnswers(url)
  if (probe.ok) return [...scenarios]
  console.log(`!! PostgreSQL is not reachable at ${describeDatabase(url)} (${probe.reason}): ` +
    `running the simulated pool ('io') instead of 'pg'. Start PostgreSQL or set DATABASE_URL to run 'pg'.`)
  const out: Scenario[] = []
  for (const scenario of scenarios) {
    const replaced = scenario === 'pg' ? 'io' : scenario
    if (!out.includes(replaced)) out.push(replaced)
  }
  return out
}
