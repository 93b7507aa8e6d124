const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

export function formatCount(n: number | null | undefined): string {
  return typeof n === 'number' ? n.toLocaleString() : '—';
}

export function percent(done: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(100, Math.floor((done * 100) / total));
}

const STEP_LABELS: Record<string, string> = {
  ArnSyntax: 'ARN syntax',
  DescribeKey: 'Describe key',
  GenerateDataKey: 'Generate data key',
  EncryptTestData: 'Encrypt test data',
  DecryptDataKey: 'Decrypt data key',
  DecryptTestData: 'Decrypt test data',
  Configuration: 'Configuration',
  GetHealthStatus: 'Proxy health',
  GetKeyMetadata: 'Key metadata',
  WrapDataKey: 'Wrap data key',
  UnwrapDataKey: 'Unwrap data key',
  CompareDataKey: 'Compare data key',
};

export function stepLabel(step: string): string {
  return STEP_LABELS[step] ?? step;
}

export function typeLabel(type: string): string {
  if (type === 'KmsSymmetric') return 'AWS KMS Symmetric';
  if (type === 'LocalKeyManager') return 'Local key manager (XKS proxy)';
  return type === 'None' ? 'None (platform-managed key)' : type;
}

/** Server messages point API users at GET …/keypolicy; on this page the Key policy panel below shows it. */
export function forThisPage(message: string): string {
  return message.replace(/GET \/api\/v2\/conversations\/keyconfigurations\/keypolicy/g, 'the Key policy panel below');
}
