/**
 * What the soak client knows about each conversation: the states it may be in. An acknowledged
 * write leaves exactly one; a write whose answer never came (timeout, connection lost, 5xx) may
 * or may not have happened, so both states stay possible until a read or an acknowledged write
 * settles it. A read outside the possible states is a wrong read; a final read outside them is an
 * acknowledged write lost.
 */

export type Data = Record<string, string>;
/** null: the conversation has no secured data (never written, or deleted). */
export type State = Data | null;

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
  /** Index of the node that acknowledged the last write (the final read goes to the other one). */
  lastWriter = -1;
  acknowledgedWrites = 0;

  get candidates(): readonly State[] {
    return this.possible;
  }

  /** An acknowledged write: its result is the only possible state. */
  acknowledged(apply: (s: State) => State, node: number): void {
    const results = this.possible.map(apply);
    // PATCH acknowledged on an uncertain base: the result depends on which base was real.
    this.possible = dedupe(results);
    this.lastWriter = node;
    this.acknowledgedWrites++;
  }

  /** A write whose outcome is unknown: the old states and the written ones are all possible. */
  uncertain(apply: (s: State) => State): void {
    this.possible = dedupe([...this.possible, ...this.possible.map(apply)]);
  }

  /** A read: true if it is one of the possible states (which it then becomes). */
  observed(state: State): boolean {
    const k = key(state);
    const match = this.possible.find((s) => key(s) === k);
    if (match === undefined) return false;
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
  // Bounded: a conversation whose writes keep failing keeps its most recent possibilities.
  return [...seen.values()].slice(-16);
}
