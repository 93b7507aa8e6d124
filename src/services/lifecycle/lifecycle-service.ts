import { parseInstant } from '../instant.js';
import type { Caller } from '../auth/auth-service.js';
import { badRequest, notFound } from '../errors.js';
import type { KmsGateway } from '../../kms/kms-gateway.js';
import type { AuditRecorder, KeyConfigService } from '../keyconfig/keyconfig-service.js';
import type { KeyConfigDal } from '../keyconfig/keyconfig-dal.js';
import type { OrgDal } from '../orgs/org-dal.js';
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
}

export interface LifecycleServiceDeps {
  dal: Pick<LifecycleDal, 'usageByKeyArn' | 'historicKeyArns' | 'shredWindow'>;
  keyConfigDal: Pick<KeyConfigDal, 'findById'>;
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey'>;
  orgDal: Pick<OrgDal, 'findOrganization'>;
  gateway: Pick<KmsGateway, 'describeKey'>;
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

  /** The key ARN new data goes to now; DescribeKey follows a retargeted alias, the saved ARN is the fallback. */
  async function currentKeyArn(orgId: string, savedArn: string | null): Promise<string | null> {
    const active = await deps.keyConfigs.resolveActiveKey(orgId);
    if (active.type === 'None') return active.keyId;
    try {
      return (await deps.gateway.describeKey(active.keyId)).Arn ?? savedArn;
    } catch {
      return savedArn;
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
      const rows = new Map<string, KeyUsageRow>();
      const blank = (keyArn: string): KeyUsageRow => ({ keyArn, current: false, dataKeys: 0, conversations: 0, values: 0, oldest: null, newest: null, safeToRetire: false });
      for (const arn of [...historic, ...(current ? [current] : [])]) rows.set(arn, blank(arn));
      for (const c of counts) {
        rows.set(c.keyArn, { ...blank(c.keyArn), dataKeys: c.dataKeys, conversations: c.conversations, values: c.values, oldest: iso(c.oldest), newest: iso(c.newest) });
      }
      const entities = [...rows.values()].map((r) => ({
        ...r,
        current: r.keyArn === current,
        // Only a key nothing live depends on may go; the current key never counts as retirable.
        safeToRetire: r.keyArn !== current && r.dataKeys === 0,
      }));
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
      await deps.audit.record({ orgId: caller.orgId, principal: caller.principalId, action: 'lifecycle.shred', target: configId, outcome: 'success', details: summary });
      return summary;
    },
  };
}
