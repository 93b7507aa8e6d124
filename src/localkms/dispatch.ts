import { KmsError } from './errors.js';
import { aliasOperations } from './operations/aliases.js';
import { cryptographicOperations } from './operations/cryptography.js';
import type { Input } from './operations/input.js';
import type { OperationContext } from './operations/key-access.js';
import { keyManagementOperations } from './operations/key-management.js';

/** Operation name (the part after `TrentService.`) → handler. */

type Handler = (input: Input, ctx: OperationContext) => Promise<Record<string, unknown>>;

const HANDLERS: Record<string, Handler> = {
  ...keyManagementOperations,
  ...aliasOperations,
  ...cryptographicOperations,
};

export const SUPPORTED_OPERATIONS: readonly string[] = Object.keys(HANDLERS).sort();

export function isSupportedOperation(name: string): boolean {
  return Object.hasOwn(HANDLERS, name);
}

export async function dispatch(operation: string, input: Input, ctx: OperationContext): Promise<Record<string, unknown>> {
  const handler = Object.hasOwn(HANDLERS, operation) ? HANDLERS[operation] : undefined;
  if (!handler) throw new KmsError('UnknownOperationException', `The local KMS does not support ${operation}.`);
  return handler(input, ctx);
}
