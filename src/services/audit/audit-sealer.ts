// The audit sealer: takes the events requests appended without chain fields, in the order the
// database assigned them, and chains them per organization — seq, prevHash, hash per event, then
// one seal per organization and batch that covers the batch's last hash and the previous seal.
// One node seals at a time (a lease renewed by every pass, as rewrap jobs hold theirs); a node
// that dies mid-pass leaves its transaction rolled back and its lease running out, and the next
// holder seals those events.

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DialectName } from '../../store/database.js';
import type { AuditHeadsTable, AuditSealsTable, Database } from '../../store/schema.js';
import { computeEventHash, computeSealHash } from './audit-chain.js';
import { createAuditDal, emptyHead, type AuditEventRow, type SealedFields } from './audit-dal.js';
import { fromRow } from './audit-rows.js';

export const SEALER_LEASE = 'audit-sealer';

export interface AuditSealerSettings {
  /** How often a pass runs (the seal lag under load is about one interval plus one pass). */
  intervalMs: number;
  /** How long a pass's lease lasts; another node takes over this long after a holder died. */
  leaseMs: number;
  /**
   * Events sealed per transaction at most. Small on purpose: on SQLite a batch runs synchronously
   * and holds the event loop, so a large one shows up in every in-flight request's latency; the
   * pass yields to the loop between batches and still seals everything pending on each tick.
   */
  batchSize: number;
}

export const DEFAULT_SEALER_SETTINGS: AuditSealerSettings = { intervalMs: 200, leaseMs: 5_000, batchSize: 100 };

export interface AuditSealerDeps {
  db: Kysely<Database>;
  /** PostgreSQL seals 100 events per statement; SQLite one per statement. */
  dialect?: DialectName;
  settings?: Partial<AuditSealerSettings>;
  nodeId?: string;
  clock?: () => number;
  log?: { error(obj: object, msg: string): void };
}

export type AuditSealer = ReturnType<typeof createAuditSealer>;

export function createAuditSealer(deps: AuditSealerDeps) {
  const settings = { ...DEFAULT_SEALER_SETTINGS, ...deps.settings };
  const clock = deps.clock ?? Date.now;
  const nodeId = deps.nodeId ?? randomUUID();
  const dal = createAuditDal(deps.db);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  /** One transaction: seals up to batchSize events; returns how many (0 without the lease or with nothing to seal). */
  async function sealBatch(): Promise<number> {
    if (!(await dal.claimLease(SEALER_LEASE, nodeId, clock(), settings.leaseMs))) return 0;
    const events = await dal.unsealedEvents(settings.batchSize);
    if (events.length === 0) return 0;
    const byOrg = new Map<string, AuditEventRow[]>();
    for (const e of events) {
      const list = byOrg.get(e.org_id);
      if (list) list.push(e);
      else byOrg.set(e.org_id, [e]);
    }
    const heads = new Map((await dal.headsOf([...byOrg.keys()])).map((h) => [h.org_id, h]));
    const sealedAt = Math.floor(clock());
    // Everything is computed before the transaction, so it holds the database (SQLite's one writer) only for the writes.
    const plans = [...byOrg].map(([orgId, orgEvents]) => planSeal(heads.get(orgId) ?? emptyHead(orgId), orgEvents, sealedAt));
    return deps.db.transaction().execute(async (trx) => {
      // Renewing the lease inside the transaction fences a holder whose lease ran out while it computed.
      if (!(await createAuditDal(trx).claimLease(SEALER_LEASE, nodeId, clock(), settings.leaseMs, trx))) throw new LeaseLost();
      const trxDal = createAuditDal(trx);
      let sealed = 0;
      for (const plan of plans) {
        if (!(await trxDal.advanceHead(trx, plan.from, plan.to, plan.seal))) throw new LeaseLost();
        const n = await trxDal.sealEvents(trx, plan.from.org_id, plan.events, deps.dialect);
        if (n !== plan.events.length) throw new LeaseLost();
        sealed += n;
      }
      return sealed;
    }).catch((err) => {
      if (err instanceof LeaseLost) return 0; // rolled back; the holder of the lease seals these events
      throw err;
    });
  }

  /** Seals until nothing is left (or `maxBatches` transactions ran); returns how many events it sealed. */
  async function sealPending(maxBatches = Infinity): Promise<number> {
    if (running) await running.catch(() => undefined);
    const pass = (async () => {
      let total = 0;
      for (let i = 0; i < maxBatches; i++) {
        const n = await sealBatch();
        total += n;
        if (n < settings.batchSize) break;
        // Requests waiting behind this pass go first (see batchSize).
        await new Promise((resolve) => setImmediate(resolve));
      }
      return total;
    })();
    running = pass;
    try {
      return await pass;
    } finally {
      if (running === pass) running = undefined;
    }
  }

  return {
    nodeId,
    settings,
    sealPending,
    /**
     * Seconds since the oldest event still waiting for a seal was appended (0: none waits), across
     * all nodes: whichever node holds the lease, this grows when sealing stalls (the metric
     * convault_audit_seal_lag_seconds; normally about one interval plus one pass).
     */
    async lagSeconds(): Promise<number> {
      const oldest = await dal.oldestUnsealedAt();
      return oldest === null ? 0 : Math.max(0, (clock() - oldest) / 1000);
    },
    /** Runs a pass every `intervalMs` until stop(). */
    start(): void {
      stopped = false;
      const tick = async () => {
        try {
          await sealPending();
        } catch (err) {
          deps.log?.error({ err: (err as Error).message }, 'audit sealing failed; retrying');
        }
        if (!stopped) timer = setTimeout(tick, settings.intervalMs);
      };
      timer = setTimeout(tick, settings.intervalMs);
    },
    /** Stops the loop, lets a running pass finish, and hands the lease back so another node need not wait for it to run out. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
      await dal.releaseLease(SEALER_LEASE, nodeId).catch(() => undefined);
    },
  };
}

class LeaseLost extends Error {}

interface SealPlan {
  from: AuditHeadsTable;
  to: AuditHeadsTable;
  seal: AuditSealsTable;
  events: SealedFields[];
}

function planSeal(head: AuditHeadsTable, rows: AuditEventRow[], sealedAt: number): SealPlan {
  let seq = Number(head.seq);
  let prevHash = head.last_hash;
  const events: SealedFields[] = [];
  for (const row of rows) {
    seq += 1;
    const hash = computeEventHash({ ...fromRow(row), seq, prevHash });
    events.push({ id: row.id, seq, prevHash, hash });
    prevHash = hash;
  }
  const batch = Number(head.batch) + 1;
  const sealFields = { orgId: head.org_id, batch, firstSeq: Number(head.seq) + 1, lastSeq: seq, lastHash: prevHash, sealedAt, prevSealHash: head.seal_hash };
  const sealHash = computeSealHash(sealFields);
  return {
    from: head,
    to: { org_id: head.org_id, seq, last_hash: prevHash, batch, seal_hash: sealHash },
    seal: {
      org_id: head.org_id,
      batch,
      first_seq: sealFields.firstSeq,
      last_seq: seq,
      last_hash: prevHash,
      sealed_at: sealedAt,
      prev_seal_hash: head.seal_hash,
      seal_hash: sealHash,
    },
    events,
  };
}
