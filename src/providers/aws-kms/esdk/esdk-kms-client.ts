import { AsyncLocalStorage } from 'node:async_hooks';
import type { KmsNodeClientSupplier } from '@aws-crypto/client-node';
import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { classifyKmsError, type KmsCallError } from '../../../kms/kms-failure.js';
import type { KmsMetrics } from '../../../kms/kms-metrics.js';

type EsdkKmsClient = Exclude<ReturnType<KmsNodeClientSupplier>, false>;

/** What the KMS calls made on behalf of one API request did (the ESDK folds KMS errors into text). */
export interface KmsCallLog {
  calls: number;
  failures: KmsCallError[];
}

const scope = new AsyncLocalStorage<KmsCallLog>();

/** Runs `fn` and reports every KMS call the ESDK made for it, so failures can be typed by their AWS error. */
export async function withKmsCallLog<T>(fn: () => Promise<T>): Promise<{ log: KmsCallLog; result?: T; error?: unknown }> {
  const log: KmsCallLog = { calls: 0, failures: [] };
  try {
    return { log, result: await scope.run(log, fn) };
  } catch (error) {
    return { log, error };
  }
}

/**
 * The ESDK's KMS keyrings call `generateDataKey/encrypt/decrypt` methods on a client; the v3 SDK's
 * KMSClient has only `send`. This adapts convault's own clients (so every call goes through the
 * configured endpoint and credentials), counts the calls in the KMS metrics like the gateway does,
 * and logs failures for the request in scope.
 */
export function esdkClientProvider(clientForRegion: (region: string) => KMSClient, metrics: Pick<KmsMetrics, 'record'>): KmsNodeClientSupplier {
  const adapters = new Map<string, EsdkKmsClient>();
  return (region: string) => {
    let adapter = adapters.get(region);
    if (!adapter) {
      const client = clientForRegion(region);
      const call = async <T>(operation: string, send: () => Promise<T>): Promise<T> => {
        const log = scope.getStore();
        if (log) log.calls++;
        const started = performance.now();
        try {
          const out = await send();
          metrics.record(operation, 'ok', performance.now() - started);
          return out;
        } catch (err) {
          const failure = classifyKmsError(err, operation);
          metrics.record(operation, failure.awsName, performance.now() - started);
          log?.failures.push(failure);
          throw failure;
        }
      };
      adapter = {
        generateDataKey: (args) => call('GenerateDataKey', () => client.send(new GenerateDataKeyCommand(args))),
        encrypt: (args) => call('Encrypt', () => client.send(new EncryptCommand(args))),
        decrypt: (args) => call('Decrypt', () => client.send(new DecryptCommand(args))),
      } as EsdkKmsClient;
      adapters.set(region, adapter);
    }
    return adapter;
  };
}
