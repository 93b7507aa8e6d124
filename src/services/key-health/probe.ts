import { isKeyProviderError, type KeyProvider } from '../../providers/key-provider.js';
import { mapLimit, statusForFailure, summarizeKeys, type HealthError, type KeyHealth, type KeyProbeInput, type ProbeResult, type ProtectedKey } from '../../providers/key-health.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';

export { mapLimit, statusForFailure, summarizeKeys, type ProtectedKey } from '../../providers/key-health.js';

/**
 * One probe of an organization's keys: the provider of the current key probes them its own way when
 * it can (the AWS adapter's KMS probe: deletion dates, a Decrypt when DescribeKey is denied), else
 * through the port. Never throws for a provider failure: that is the result.
 */
export async function probeOrgKeys(input: { keys: Pick<OrgKeys, 'forReference'>; currentKey: string } & KeyProbeInput): Promise<ProbeResult> {
  let provider: KeyProvider;
  try {
    provider = await input.keys.forReference(input.orgId, input.currentKey);
  } catch (err) {
    if (!isKeyProviderError(err)) throw err;
    const error: HealthError = { message: err.message, code: 'customer.key.error', errorType: 'InvalidKeyConfiguration', providerError: err.providerError ?? err.kind };
    return summarizeKeys([{ keyArn: input.lastKnownKeyArn ?? input.currentKey, current: true, state: 'Unknown', status: statusForFailure(err.kind), dataKeys: 0, error }]);
  }
  if (provider.probeKeys) return provider.probeKeys(input);
  return probeProviderKeys({ keys: input.keys, orgId: input.orgId, currentKey: input.lastKnownKeyArn ?? input.currentKey, protectedKeys: input.protectedKeys });
}

/**
 * One probe of an organization's keys held outside AWS KMS, through the provider port: the
 * provider's Test on the current key (health, metadata, a wrap and a fresh unwrap), and a describe
 * of every other key that still wraps live data keys. Never throws for a provider failure.
 */
export async function probeProviderKeys(input: { keys: Pick<OrgKeys, 'forReference'>; orgId: string; currentKey: string; protectedKeys: readonly ProtectedKey[] }): Promise<ProbeResult> {
  const dataKeysOf = (ref: string) => input.protectedKeys.find((k) => k.keyArn === ref)?.dataKeys ?? 0;
  const current = await probeOne(input, input.currentKey, true, dataKeysOf(input.currentKey));
  const others = await mapLimit(
    input.protectedKeys.filter((k) => k.keyArn !== input.currentKey),
    4,
    (k) => probeOne(input, k.keyArn, false, k.dataKeys),
  );
  return summarizeKeys([current, ...others]);
}

async function probeOne(input: { keys: Pick<OrgKeys, 'forReference'>; orgId: string }, ref: string, current: boolean, dataKeys: number): Promise<KeyHealth> {
  const base = { keyArn: ref, current, dataKeys };
  const protects = current ? 'The key' : `The key ${ref}, which still protects ${dataKeys} data key${dataKeys === 1 ? '' : 's'} of this organization,`;
  try {
    const provider = await input.keys.forReference(input.orgId, ref);
    if (current) {
      const report = await provider.test(input.orgId);
      if (report.ok) return { ...base, state: 'Enabled', status: 'ok' };
      const kind = report.lastError?.failureKind ?? 'Internal';
      const error: HealthError = {
        message: report.lastError?.message ?? 'The key Test failed.',
        code: report.lastError?.code ?? 'customer.key.error',
        errorType: report.lastError?.errorType ?? 'CustomerKeyUnavailable',
        ...(report.lastError?.providerError ? { providerError: report.lastError.providerError } : {}),
      };
      return { ...base, state: kind === 'Disabled' ? 'Disabled' : 'Unknown', status: statusForFailure(kind), error };
    }
    const d = await provider.describe();
    if (d.state === 'Enabled') return { ...base, state: d.state, status: 'ok' };
    return {
      ...base,
      state: d.state,
      status: 'failed',
      error: { message: `${protects} cannot be used: ${d.detail}. Enable it, then rewrap its data to the current key before retiring it.`, code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', keyArn: ref },
    };
  } catch (err) {
    if (!isKeyProviderError(err)) throw err;
    return {
      ...base,
      state: 'Unknown',
      status: statusForFailure(err.kind),
      error: { message: `${protects} cannot be used (${err.providerError ?? err.kind}): ${err.message}`, code: 'customer.key.error', errorType: 'CustomerKeyUnavailable', providerError: err.providerError ?? err.kind, ...(current ? {} : { keyArn: ref }) },
    };
  }
}

