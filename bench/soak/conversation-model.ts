/**
 * What a traffic client knows about each conversation it writes, exactly: the states the
 * conversation may be in. The client never accepts a read outside them (a wrong read), and never
 * lets a possibility fall out of the set because there are too many (an earlier version kept the
 * 16 most recent and so dropped "never created" after 16 failed writes during a KMS outage: the
 * service's correct 404 was then counted as a wrong read).
 *
 * The set stays small because a conversation is written only once its state is settled (one
 * possibility, no write that may still land): after a write of unknown outcome the client reads the
 * conversation before writing it again. Each conversation is written by one worker, one request at
 * a time, so writes to it never race.
 *
 * What a write's answer says (see classifyWrite):
 * - 2xx: applied.
 * - 4xx, and 5xx with a customer-key or contention code: not applied. The service makes every KMS
 *   call (data key, conversation key) before its write transaction starts and answers a contention
 *   after rolling its last attempt back (secured-data-service.ts), so these errors never follow a
 *   commit.
 * - other 5xx (database unavailable, internal): decided but unknown. The server has finished with
 *   the request; its commit may have happened with the acknowledgement lost. Both states are
 *   possible until a read settles it.
 * - no answer, connection refused: not applied (the request never reached a server).
 * - no answer otherwise (reset, timeout): in doubt. The server may still be running the request
 *   and apply it later, after any read that saw the old state, so a read of the old state does not
 *   settle it; only a read of the new one does (a request is applied at most once).
 */

export type Data = Record<string, string>;
/** null: the conversation has no secured data (never written, or deleted). */
export type State = Data | null;

export type WriteOutcome = 'applied' | 'notApplied' | 'unknown' | 'inDoubt';

/** What a client saw of a write: the status (0: no answer), the error code of the body, and whether the connection was refused. */
export interface WriteAnswer {
  status: number;
  code?: string;
  refused?: boolean;
}

/** Codes of 5xx answers the service gives only before its write transaction starts or after rolling it back. */
const NOT_APPLIED_5XX = /^(customer\.key\.|secured\.data\.contention$)/;

export function classifyWrite(answer: WriteAnswer): WriteOutcome {
  if (answer.status === 0) return answer.refused ? 'notApplied' : 'inDoubt';
  if (answer.status >= 200 && answer.status < 300) return 'applied';
  if (answer.status < 500) return 'notApplied';
  return answer.code !== undefined && NOT_APPLIED_5XX.test(answer.code) ? 'notApplied' : 'unknown';
}

/** Whether a failed fetch never reached the server (nothing was sent, so nothing can be applied). */
export function connectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

const key = (s: State) => (s === null ? 'null' : JSON.stringify(Object.entries(s).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

export function patched(state: State, patch: Record<string, string | null>): State {
  const next: Data = { ...(state ?? {}) };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete next[name];
    else next[name] = value;
  }
  return next;
}

export class ConversationModel {
  private possible: State[] = [null];
  /**
   * The state an in-doubt write would leave, while it may still land. `distinct` false: that state
   * equals the one before, so no read can tell whether it landed, and the conversation is written
   * no more (a PATCH landing after a later write would change that write's state).
   */
  private late: { state: State; distinct: boolean } | undefined;
  /** Index of the node that acknowledged the last write (the final read goes to the other one). */
  lastWriter = -1;
  acknowledgedWrites = 0;

  get candidates(): readonly State[] {
    return this.possible;
  }

  /** Settled: one possible state and no write that may still land. Only then may the client write again. */
  get writable(): boolean {
    return this.possible.length === 1 && this.late === undefined;
  }

  /** Records a write sent while writable, by what its answer says. */
  wrote(outcome: WriteOutcome, apply: (s: State) => State, node: number): void {
    if (!this.writable) throw new Error('a conversation is written only once its state is settled');
    const before = this.possible[0]!;
    const after = apply(before);
    switch (outcome) {
      case 'applied':
        this.possible = [after];
        this.lastWriter = node;
        this.acknowledgedWrites++;
        return;
      case 'notApplied':
        return;
      case 'unknown':
        this.possible = dedupe([before, after]);
        return;
      case 'inDoubt':
        this.possible = dedupe([before, after]);
        this.late = { state: after, distinct: key(after) !== key(before) };
        return;
    }
  }

  /** A read: true if it is one of the possible states. It settles the state, except the old state while a write may still land. */
  observed(state: State): boolean {
    const k = key(state);
    const match = this.possible.find((s) => key(s) === k);
    if (match === undefined) return false;
    if (this.late !== undefined) {
      if (!this.late.distinct || key(this.late.state) !== k) return true; // it may land later: the possible states stay
      this.late = undefined; // it landed (a request is applied at most once)
    }
    this.possible = [match];
    return true;
  }

  hasData(): boolean {
    return this.possible.some((s) => s !== null);
  }
}

function dedupe(states: State[]): State[] {
  const seen = new Map<string, State>();
  for (const s of states) seen.set(key(s), s);
  return [...seen.values()];
}
