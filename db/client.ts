import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/**
 * Runs one fixed hot-path statement by name with positional parameters and returns its rows.
 * On PostgreSQL it is prepared once per connection (no parse and plan per call).
 */
export type StatementRunner = <T>(name: string, text: string, params: unknown[]) => Promise<T[]>;

/** Queries through drizzle, plus the named statements of the hot paths. */
export interface Connection {
  readonly db: Db;
  readonly run: StatementRunner;
}

/** PostgreSQL over the network, or PGlite in a data folder: one interface for both. */
export interface Database extends Connection {
  /**
   * One connection for the group-commit writer: statements sent on it run one after another
   * in the order they were sent, so a writer can send the next batch before the previous
   * one's results are handled and still keep arrival order.
   */
  readonly writer: Connection;
  readonly kind: 'postgres' | 'pglite';
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string | null;
  dataDir: string;
  poolSize: number;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.poolSize);
  return openPglite(opts.dataDir);
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const { default: pg } = await import('pg');
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const { migrate } = await import('drizzle-orm/node-postgres/migrator');
  // bigint ids travel as strings; parse int8 as string explicitly to never lose precision.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // An idle client's error (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const db = drizzle(pool, { schema }) as unknown as Db;
  const writerPool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000 });
  writerPool.on('error', () => undefined);
  const runner =
    (p: InstanceType<typeof pg.Pool>): StatementRunner =>
    async <T>(name: string, text: string, params: unknown[]) =>
      (await p.query({ name, text, values: params })).rows as T[];
  return {
    db,
    run: runner(pool),
    writer: { db: drizzle(writerPool, { schema }) as unknown as Db, run: runner(writerPool) },
    kind: 'postgres',
    migrate: () => migrate(drizzle(pool), { migrationsFolder: MIGRATIONS_FOLDER }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      await Promise.all([pool.end(), writerPool.end()]);
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create(dataDir);
  const db = drizzle(client, { schema }) as unknown as Db;
  const run: StatementRunner = async <T>(_name: string, text: string, params: unknown[]) => (await client.query<T>(text, params)).rows;
  return {
    db,
    run,
    // PGlite is one connection that runs queries in submission order.
    writer: { db, run },
    kind: 'pglite',
    migrate: () => migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => client.close(),
  };
}
