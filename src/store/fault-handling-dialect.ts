import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryCompiler, QueryResult, TransactionSettings } from 'kysely';
import { classifyStoreError, toStoreError } from './store-faults.js';

/**
 * Wraps a Kysely dialect so that every query reports a database fault as StoreUnavailableError
 * (see store-faults.ts), and a read that failed only because its connection died is run once more
 * on a fresh connection. Inside a transaction nothing is retried here: the server has rolled it
 * back, and whether to run it again is the caller's decision (store/transactions.ts).
 */
type CompileQuery = QueryCompiler['compileQuery'];

export function withStoreFaultHandling(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new FaultHandlingDriver(dialect.createDriver()),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  };
}

class FaultHandlingConnection implements DatabaseConnection {
  inTransaction = false;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly driver: FaultHandlingDriver,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } catch (err) {
      if (this.inTransaction || classifyStoreError(err) !== 'connection-lost' || !isRead(query)) throw toStoreError(err);
      return this.driver.runOnFreshConnection<R>(query);
    }
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(query, chunkSize);
    } catch (err) {
      throw toStoreError(err);
    }
  }
}

class FaultHandlingDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  async init(): Promise<void> {
    try {
      await this.inner.init();
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new FaultHandlingConnection(await this.acquireInner(), this);
  }

  async runOnFreshConnection<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const fresh = await this.acquireInner();
    try {
      return await fresh.executeQuery<R>(query);
    } catch (err) {
      throw toStoreError(err);
    } finally {
      await this.inner.releaseConnection(fresh);
    }
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as FaultHandlingConnection;
    // Set first: a failed BEGIN must not be retried as if it were a read.
    c.inTransaction = true;
    try {
      await this.inner.beginTransaction(c.inner, settings);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as FaultHandlingConnection;
    try {
      await this.inner.commitTransaction(c.inner);
    } catch (err) {
      throw toStoreError(err);
    } finally {
      c.inTransaction = false;
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as FaultHandlingConnection;
    try {
      await this.inner.rollbackTransaction(c.inner);
    } catch (err) {
      // The connection is gone, and with it the transaction (the server rolled it back). Swallowing
      // this lets the error that failed the transaction reach the caller instead of the rollback's.
      if (classifyStoreError(err) === undefined) throw err;
    } finally {
      c.inTransaction = false;
    }
  }

  savepoint(connection: DatabaseConnection, name: string, compile: CompileQuery): Promise<void> {
    return this.forwardSavepoint('savepoint', connection, name, compile);
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: CompileQuery): Promise<void> {
    return this.forwardSavepoint('rollbackToSavepoint', connection, name, compile);
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: CompileQuery): Promise<void> {
    return this.forwardSavepoint('releaseSavepoint', connection, name, compile);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await this.inner.releaseConnection((connection as FaultHandlingConnection).inner);
  }

  async destroy(): Promise<void> {
    await this.inner.destroy();
  }

  private async forwardSavepoint(
    method: 'savepoint' | 'rollbackToSavepoint' | 'releaseSavepoint',
    connection: DatabaseConnection,
    name: string,
    compile: CompileQuery,
  ): Promise<void> {
    const fn = this.inner[method];
    if (!fn) throw new Error(`this dialect does not support ${method}`);
    try {
      await fn.call(this.inner, (connection as FaultHandlingConnection).inner, name, compile);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  private async acquireInner(): Promise<DatabaseConnection> {
    try {
      return await this.inner.acquireConnection();
    } catch (err) {
      throw toStoreError(err);
    }
  }
}

/** A statement that changes nothing, so running it twice is harmless. */
function isRead(query: CompiledQuery): boolean {
  if (query.query.kind === 'SelectQueryNode') return !/\bfor\s+(update|share|no key update|key share)\b/i.test(query.sql);
  if (query.query.kind === 'RawNode') return /^\s*select\b/i.test(query.sql) && !/\b(insert|update|delete|for\s+update|nextval|setval)\b/i.test(query.sql);
  return false;
}
