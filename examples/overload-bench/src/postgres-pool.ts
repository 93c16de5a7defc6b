import pg from 'pg'

/** Where the `pg` scenario's PostgreSQL is: `DATABASE_URL`, or a local server with trust auth. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

export interface PostgresPoolOptions {
  connectionString: string
  /** Connections in the pool: the scenario's capacity is about `maxConnections / queryMs` per ms. */
  maxConnections: number
  /** How long one query keeps its connection, ms (`pg_sleep`, so the database does no real work). */
  queryMs: number
}

/**
 * The `pg` scenario's bottleneck: a real node-postgres pool, each request one `SELECT pg_sleep($1)`
 * holding a connection for `queryMs`. Unlike the simulated pool, the queue is pg's own (its
 * `waitingCount`), and every query pays the protocol's round trip and the driver's parsing on the
 * event loop, as an application's does. `slowFactor` stretches every later query, for the
 * slow-database step.
 */
export class PostgresPool {
  readonly pool: pg.Pool
  readonly queryMs: number
  /** Multiplies `queryMs` for queries started from now on; 1 is a healthy database. */
  slowFactor = 1

  constructor(options: PostgresPoolOptions) {
    this.queryMs = options.queryMs
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: options.maxConnections })
    // Without a listener, an idle connection the server drops (a restart) would crash the process.
    this.pool.on('error', (error) => { console.error(`postgres pool: ${error.message}`) })
  }

  /** Clients waiting for a free connection (pg's own queue). */
  get waiting(): number {
    return this.pool.waitingCount
  }

  async query(): Promise<void> {
    await this.pool.query('SELECT pg_sleep($1)', [(this.queryMs * this.slowFactor) / 1000])
  }

  /** Ends every connection, after the queries already queued have run. */
  async close(): Promise<void> {
    await this.pool.end()
  }
}
