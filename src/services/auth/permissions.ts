export const PERMISSIONS = [
  'conversation:encryptionKey:view',
  'conversation:encryptionKey:edit',
  'conversation:securedData:view',
  'conversation:securedData:edit',
  'conversation:encryption:use',
  'audit:log:view',
  'admin:organization:manage',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}
