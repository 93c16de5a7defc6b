/**
 * Finds the PostgreSQL that tests run against: DATABASE_URL, or postgresql://postgres@127.0.0.1:5432/test.
 * Where none answers, PostgreSQL tests skip with a loud message, unless REQUIRE_POSTGRES=1 or
 * CI=true, which turn the skip into a failure: a CI run must never pass by skipping them.
 */
import pg from 'pg'

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
export const POSTGRES_REQUIRED = process.env.REQUIRE_POSTGRES === '1' || process.env.CI === 'true'

/** Why PostgreSQL at `url` does not answer `SELECT 1` within a second, or undefined when it does. */
async function whyNoPostgres(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  // A server that goes away after connecting would otherwise raise an unhandled 'error'.
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return undefined
  } catch (error) {
    if (!(error instanceof Error)) return String(error)
    // A refused connection to a name with two addresses is an AggregateError with an empty message.
    const code = (error as { code?: unknown }).code
    return error.message !== '' ? error.message : typeof code === 'string' ? code : error.name
  } finally {
    await client.end().catch(() => {})
  }
}

/** True when PostgreSQL at `url` answers `SELECT 1` within a second (connects, authenticates, the database exists). */
export async function postgresAnswers(url = DATABASE_URL): Promise<boolean> {
  return (await whyNoPostgres(url)) === undefined
}

/**
 * `{ skip: false }` when PostgreSQL answers; a loud skip reason when it does not. Throws under
 * REQUIRE_POSTGRES=1 or CI=true so the test file fails instead.
 * Use as: `t.test('…', await postgresTestOptions(), …)`.
 */
export async function postgresTestOptions(): Promise<{ skip: false | string }> {
  const reason = await whyNoPostgres(DATABASE_URL)
  if (reason === undefined) return { skip: false }
  const message = `NO POSTGRESQL at ${withoutPassword(DATABASE_URL)} (${reason}): PostgreSQL tests SKIPPED. Start PostgreSQL or set DATABASE_URL.`
  if (POSTGRES_REQUIRED) throw new Error(`${message} (REQUIRE_POSTGRES=1 or CI=true makes this a failure)`)
  console.error(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n`)
  return { skip: message }
}

function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'DATABASE_URL (unparsable)'
  }
}
