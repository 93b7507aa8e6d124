import { parseInstant } from '../instant.js';
import type { Caller } from '../auth/auth-service.js';
import { badRequest, notFound } from '../errors.js';
import type { AuditRecorder, KeyConfigService } from '../keyconfig/keyconfig-service.js';
import type { KeyConfigDal } from '../keyconfig/keyconfig-dal.js';
import type { OrgDal } from '../orgs/org-dal.js';
import { isKeyProviderError, KeyProviderError } from '../../providers/key-provider.js';
import { KEY_CONFIGURATION_TYPES } from '../../providers/registry.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';
import { errorGroupsOf } from './job-model.js';
import type { LifecycleDal } from './lifecycle-dal.js';

export interface KeyUsageRow {
  keyArn: string;
  current: boolean;
  dataKeys: number;
  conversations: number;
  values: number;
  oldest: string | null;
  newest: string | null;
  safeToRetire: boolean;
  /**
   * Current: new data goes to it. SafeToRetire: nothing live depends on it. InUse: live data keys
   * are wrapped by it. Unusable: live data keys are wrapped by it but KMS will not decrypt them
   * (disabled, pending deletion, gone, or refused in the last rewrap): `problem` says why.
   */
  status: 'Current' | 'InUse' | 'SafeToRetire' | 'Unusable';
  problem?: string;
}

export interface LifecycleServiceDeps {
  dal: Pick<LifecycleDal, 'usageByKeyArn' | 'historicKeyArns' | 'shredWindow' | 'findLatestEndedJob'>;
  keyConfigDal: Pick<KeyConfigDal, 'findById'>;
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey'>;
  orgDal: Pick<OrgDal, 'findOrganization'>;
  /** The organization's keys, whatever provider holds them. */
  keys: Pick<OrgKeys, 'forReference'>;
  audit: AuditRecorder;
  forgetDataKeys(ids: Iterable<string>): void;
  clock?: () => number;
}

export type LifecycleService = ReturnType<typeof createLifecycleService>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function createLifecycleService(deps: LifecycleServiceDeps) {
  const clock = deps.clock ?? Date.now;

  async function configOf(caller: Caller, id: string) {
    const config = await deps.keyConfigDal.findById(caller.orgId, id);
    if (!config) throw notFound('Key configuration');
    return config;
  }

  /** The key new data goes to now; describing it follows a retargeted alias, the saved key is the fallback. */
  async function currentKeyArn(orgId: string, savedArn: string | null): Promise<string | null> {
    const active = await deps.keyConfigs.resolveActiveKey(orgId, { fresh: true });
    if (!KEY_CONFIGURATION_TYPES[active.type].customerOwned) return active.keyId;
    try {
      return (await (await deps.keys.forReference(orgId, active.keyId)).describe()).keyId ?? savedArn;
    } catch {
      return savedArn;
    }
  }

  /**
   * Why the provider will not unwrap the data keys an old key wraps, if it will not: its description
   * says the key is not Enabled or gone; when describing is denied, the last rewrap's refusals for
   * that key tell. A provider that does not answer now says nothing either way.
   */
  async function whyUnusable(orgId: string, keyArn: string, dataKeys: number, refusedByRewrap: ReturnType<typeof errorGroupsOf>): Promise<string | undefined> {
    const protects = `It still wraps ${dataKeys} data key${dataKeys === 1 ? '' : 's'} that cannot be read now`;
    try {
      const provider = await deps.keys.forReference(orgId, keyArn);
      const description = await provider.describe();
      if (description.state === 'Enabled') return undefined;
      if (description.state === 'Disabled') {
        return `${protects}: the key is Disabled. Enable it again where it is kept. ${provider.remediation(new KeyProviderError('Disabled', description.detail, { operation: 'Describe' }), { nextStep: 'rewrap again', orgId })}`;
      }
      if (description.state === 'PendingDeletion') {
        return `${protects}: the key is pending deletion. Cancel the deletion (kms:CancelKeyDeletion) and enable it, then rewrap again; once it is deleted that data is lost.`;
      }
      return `${protects}: ${description.detail}.`;
    } catch (err) {
      if (!isKeyProviderError(err)) throw err;
      if (err.kind === 'NotFound') return `${protects}: the key no longer exists at its provider.`;
      if (err.kind === 'Misconfigured' && err.providerError === 'UnknownKeyReference') return `${protects}: ${err.message}`;
      if (err.kind !== 'AccessDenied') return undefined;
      const refusal = refusedByRewrap.find((g) => g.keyArn === keyArn && g.awsError !== 'ThrottlingException');
      return refusal ? `${protects}: the last rewrap was refused. ${refusal.reason}` : undefined;
    }
  }

  return {
    /** 404 unless the configuration id is the caller's organization's. */
    async assertConfiguration(caller: Caller, configId: string): Promise<void> {
      await configOf(caller, configId);
    },

    /** One row per KMS key that wraps live data of the org, or ever was its configured key. */
    async usage(caller: Caller, configId: string): Promise<{ entities: KeyUsageRow[] }> {
      const config = await configOf(caller, configId);
      const [counts, historic, current] = await Promise.all([
        deps.dal.usageByKeyArn(caller.orgId),
        deps.dal.historicKeyArns(caller.orgId),
        currentKeyArn(caller.orgId, config.key_arn),
      ]);
      const rows = new Map<string, Omit<KeyUsageRow, 'status' | 'problem'>>();
      const blank = (keyArn: string): Omit<KeyUsageRow, 'status' | 'problem'> => ({ keyArn, current: false, dataKeys: 0, conversations: 0, values: 0, oldest: null, newest: null, safeToRetire: false });
      for (const arn of [...historic, ...(current ? [current] : [])]) rows.set(arn, blank(arn));
      for (const c of counts) {
        rows.set(c.keyArn, { ...blank(c.keyArn), dataKeys: c.dataKeys, conversations: c.conversations, values: c.values, oldest: iso(c.oldest), newest: iso(c.newest) });
      }
      const lastRewrap = await deps.dal.findLatestEndedJob(caller.orgId, 'rewrap');
      const refusedByRewrap = lastRewrap ? errorGroupsOf(lastRewrap) : [];
      const entities = await Promise.all(
        [...rows.values()].map(async (r): Promise<KeyUsageRow> => {
          const isCurrent = r.keyArn === current;
          // Only a key nothing live depends on may go; the current key never counts as retirable.
          const safeToRetire = !isCurrent && r.dataKeys === 0;
          const base = { ...r, current: isCurrent, safeToRetire };
          if (isCurrent) return { ...base, status: 'Current' };
          if (safeToRetire) return { ...base, status: 'SafeToRetire' };
          const problem = await whyUnusable(caller.orgId, r.keyArn, r.dataKeys, refusedByRewrap);
          return problem ? { ...base, status: 'Unusable', problem } : { ...base, status: 'InUse' };
        }),
      );
      entities.sort((a, b) => Number(b.current) - Number(a.current) || (b.newest ?? '').localeCompare(a.newest ?? ''));
      return { entities };
    },

    /**
     * Crypto-shreds a time window: the org data keys created in [from, to) lose their KMS blobs, so
     * every conversation under them is unreadable for good. The organization's name must be typed.
     */
    async shredWindow(caller: Caller, configId: string, body: { from: string; to: string; confirm: string }) {
      await configOf(caller, configId);
      // Strict: what an irreversible operation destroys is never decided by a lenient parser.
      const from = parseInstant(body.from, 'from');
      const to = parseInstant(body.to, 'to');
      if (to <= from) throw badRequest('to must be after from.', { field: 'to' });
      const org = await deps.orgDal.findOrganization(caller.orgId);
      if (!org || body.confirm !== org.name) {
        throw badRequest('confirm must be exactly the name of your organization: shredding cannot be undone.', { field: 'confirm' });
      }
      const result = await deps.dal.shredWindow(caller.orgId, from, to, clock());
      deps.forgetDataKeys(result.ids);
      const summary = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), dataKeys: result.ids.length, conversations: result.conversations, values: result.values };
      await deps.audit.record({ orgId: caller.orgId, principal: caller.principalId, action: 'lifecycle.shred', target: configId, outcome: 'success', details: { principalName: caller.principalName, ...summary } });
      return summary;
    },
  };
}
