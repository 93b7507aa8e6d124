export const PERMISSIONS = [
  'conversation:encryptionKey:view',
  'conversation:encryptionKey:edit',
  'conversation:securedData:view',
  'conversation:securedData:edit',
  'conversation:encryption:use',
  'audit:log:view',
  'admin:organization:manage',
  'admin:token:manage',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * Cross-organization administration (create organizations, mint or revoke tokens in any of them):
 * only principals of the platform organization may hold these. A tenant's principal never does —
 * it is refused at creation, and ignored at authentication should an older database hold one.
 * `admin:token:manage` is the organization-level counterpart: the tokens of the caller's own org.
 */
export const PLATFORM_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>(['admin:organization:manage']);

/** The known permission closest to a mistyped one (case, a letter or two, a missing segment), if any is close. */
export function closestPermission(value: string): Permission | undefined {
  let best: { permission: Permission; distance: number } | undefined;
  for (const permission of PERMISSIONS) {
    const distance = editDistance(value.toLowerCase(), permission.toLowerCase());
    if (!best || distance < best.distance) best = { permission, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(value.length / 4)) ? best.permission : undefined;
}

/** "Unknown permission(s): …" with a suggestion for each and the list of known ones. */
export function unknownPermissionsMessage(unknown: readonly string[]): string {
  const named = unknown.map((u) => {
    const close = closestPermission(u);
    return close ? `${u} (did you mean ${close}?)` : u;
  });
  return `Unknown permission(s): ${named.join(', ')}. Known permissions: ${PERMISSIONS.join(', ')}.`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
