/** An audit event's details as a list of dotted names and values, behind a disclosure so rows stay short. */
export function AuditDetails({ details }: { details: Record<string, unknown> }) {
  const entries = flatten(details);
  if (entries.length === 0) return <>—</>;
  return (
    <details className="audit-details">
      <summary>
        {entries.length} {entries.length === 1 ? 'field' : 'fields'}
      </summary>
      <dl>
        {entries.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}

function flatten(value: unknown, prefix = ''): Array<[string, string]> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) return [[prefix, '{}']];
    return entries.flatMap(([key, inner]) => flatten(inner, prefix ? `${prefix}.${key}` : key));
  }
  return [[prefix, typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value)]];
}
