/**
 * IAM-style wildcard matching: `*` matches any run of characters (also none), `?` exactly one.
 * Used for Action patterns (`kms:GenerateDataKey*`), Resource patterns and StringLike conditions.
 * Linear-time two-pointer matcher with a single backtrack point, so hostile patterns cannot blow up.
 */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  let pi = 0;
  let vi = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (vi < v.length) {
    // `*` first: a value may itself contain `*`, which must not be taken as a literal match.
    if (pi < p.length && p[pi] === '*') {
      starAt = pi++;
      resumeAt = vi;
    } else if (pi < p.length && (p[pi] === '?' || p[pi] === v[vi])) {
      pi++;
      vi++;
    } else if (starAt !== -1) {
      // Let the last `*` swallow one more character and retry from there.
      pi = starAt + 1;
      vi = ++resumeAt;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}
