/**
 * IAM-style wildcard matching: `*` matches any run of characters (also none), `?` exactly one.
 * Used for Action patterns (`kms:GenerateDataKey*`), Resource patterns and StringLike conditions,
 * where a key owner writes the pattern and any caller chooses the value (an encryption context).
 *
 * No backtracking, so no pattern blows up (a backtracking matcher takes value × pattern steps on
 * `*aaaa…ab` against `aaaa…`, which a 32 KB policy and an 8 KB context make seconds per request):
 *   - without `?` (almost every pattern), the parts between stars are found left to right with
 *     String.prototype.indexOf, each at its first place after the previous one: linear in practice;
 *   - with `?`, the pattern runs as a set of positions advanced together over the value, one bit
 *     per position (bit-parallel NFA): value length × pattern length / 32 word operations at most.
 * Characters are UTF-16 code units: `?` matches one unit.
 */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (!p.includes('?')) return matchStarsOnly(p, v);
  return matchWithPositions(p, v);
}

function matchStarsOnly(p: string, v: string): boolean {
  const parts = p.split('*');
  if (parts.length === 1) return p === v;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (first.length + last.length > v.length || !v.startsWith(first) || !v.endsWith(last)) return false;
  // The first place of each middle part is the best one: it leaves the most room for the next.
  let from = first.length;
  const end = v.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!;
    if (part === '') continue;
    const at = v.indexOf(part, from);
    if (at === -1 || at + part.length > end) return false;
    from = at + part.length;
  }
  return true;
}

function matchWithPositions(p: string, v: string): boolean {
  // Tokens, with runs of `*` as one: then no position is reached through two stars in a row.
  const tokens: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const unit = p.charCodeAt(i);
    if (unit === STAR && tokens.at(-1) === STAR) continue;
    tokens.push(unit);
  }
  // Bit i: the first i tokens have matched what was read so far. Bit tokens.length: all of them.
  const words = (tokens.length >>> 5) + 1;
  const star = new Uint32Array(words);
  const any = new Uint32Array(words);
  const literal = new Map<number, Uint32Array>();
  tokens.forEach((t, i) => {
    if (t === STAR) star[i >>> 5]! |= 1 << (i & 31);
    else if (t === QUESTION) any[i >>> 5]! |= 1 << (i & 31);
  });
  tokens.forEach((t, i) => {
    if (t === STAR || t === QUESTION) return;
    let mask = literal.get(t);
    if (!mask) literal.set(t, (mask = Uint32Array.from(any)));
    mask[i >>> 5]! |= 1 << (i & 31);
  });

  let state = new Uint32Array(words);
  let next = new Uint32Array(words);
  state[0] = 1;
  passStars(state, star);
  for (let i = 0; i < v.length; i++) {
    const mask = literal.get(v.charCodeAt(i)) ?? any;
    let carry = 0;
    let alive = 0;
    for (let w = 0; w < words; w++) {
      const advanced = state[w]! & mask[w]!;
      // A `*` consumes the character and stays; any other matching token moves on by one.
      next[w] = (advanced << 1) | carry | (state[w]! & star[w]!);
      carry = advanced >>> 31;
      alive |= next[w]!;
    }
    if (alive === 0) return false;
    passStars(next, star);
    [state, next] = [next, state];
  }
  const end = tokens.length;
  return (state[end >>> 5]! & (1 << (end & 31))) !== 0;
}

const STAR = 0x2a;
const QUESTION = 0x3f;

/** A position before a `*` also stands after it (the star matching nothing). */
function passStars(state: Uint32Array, star: Uint32Array): void {
  let carry = 0;
  for (let w = 0; w < state.length; w++) {
    const before = state[w]! & star[w]!;
    state[w] = state[w]! | (before << 1) | carry;
    carry = before >>> 31;
  }
}
