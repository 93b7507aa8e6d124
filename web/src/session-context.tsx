import { createContext, useContext } from 'react';
import type { ApiClient } from './api/client';
import type { Organization } from './api/types';

export interface Session {
  api: ApiClient;
  org: Organization;
  /** The caller's permissions; undefined when the server cannot tell (then every control is shown and the server decides). */
  permissions: ReadonlySet<string> | undefined;
}

const SessionContext = createContext<Session | undefined>(undefined);

export const SessionProvider = SessionContext.Provider;

export function useSession(): Session & { can(permission: string): boolean } {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return { ...session, can: (permission) => session.permissions?.has(permission) ?? true };
}
