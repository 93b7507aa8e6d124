// Queries of the request path, built and compiled once. Building a Kysely query (immutable nodes,
// frozen at every step) and compiling it to SQL cost more CPU than SQLite takes to run it; the
// statement cache below Kysely saves the prepare, this saves the build. The query is built once
// per dialect with placeholder values, and each execution sends the same SQL with the values put
// where the placeholders were.

import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';

const MARK = '\u0000convault-precompiled:';

interface Template {
  sql: string;
  parameters: readonly unknown[];
  /** For each parameter position that holds a placeholder: which named value goes there. */
  slots: Array<[position: number, name: string]>;
}

export interface Precompiled<DB, P extends string, R> {
  execute(executor: Kysely<DB>, values: Record<P, unknown>): Promise<QueryResult<R>>;
  /** The SQL sent for this executor's dialect (tests). */
  sql(executor: Kysely<DB>): string;
}

/**
 * `build` receives the executor and one placeholder per name in `names`; it must use each
 * placeholder only as a bound value (where/values/set), never as an identifier. A query that
 * would inline a placeholder into its SQL text is refused at first use.
 */
export function precompiled<DB, P extends string, R>(names: readonly P[], build: (db: Kysely<DB>, p: Record<P, any>) => Compilable<R>): Precompiled<DB, P, R> {
  // Keyed by the executor's adapter: one per dialect instance, shared by its transactions.
  const templates = new WeakMap<object, Template>();

  function template(executor: Kysely<DB>): Template {
    const adapter = executor.getExecutor().adapter;
    let t = templates.get(adapter);
    if (t) return t;
    const placeholders = Object.fromEntries(names.map((n) => [n, `${MARK}${n}`])) as Record<P, string>;
    const compiled = build(executor, placeholders).compile();
    if (compiled.sql.includes(MARK)) throw new Error(`precompiled query puts a placeholder into its SQL text: ${compiled.sql}`);
    const slots: Template['slots'] = [];
    compiled.parameters.forEach((value, position) => {
      if (typeof value === 'string' && value.startsWith(MARK)) slots.push([position, value.slice(MARK.length)]);
    });
    const missing = names.filter((n) => !slots.some(([, name]) => name === n));
    if (missing.length) throw new Error(`precompiled query does not bind ${missing.join(', ')}: ${compiled.sql}`);
    t = { sql: compiled.sql, parameters: compiled.parameters, slots };
    templates.set(adapter, t);
    return t;
  }

  return {
    async execute(executor, values) {
      const t = template(executor);
      const parameters = t.parameters.slice();
      for (const [position, name] of t.slots) parameters[position] = values[name as P];
      return executor.executeQuery(CompiledQuery.raw(t.sql, parameters) as CompiledQuery<R>);
    },
    sql: (executor) => template(executor).sql,
  };
}
