import type {
  ApiToken,
  AuditPage,
  CreatedApiToken,
  ErrorBody,
  Job,
  KeyConfiguration,
  KeyConfigurationInput,
  KeyConfigurationList,
  KeyConfigurationTypeInfo,
  KeyConfigurationVersion,
  KeyHealth,
  KeyPolicy,
  KeyUsage,
  Organization,
  TestReport,
} from './types';

const API = '/api/v2';
const KEY_CONFIGURATIONS = `${API}/conversations/keyconfigurations`;

/** A failed API call: the HTTP status and, when the server answered, its error body. Status 0: no answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The permissions a 403 says the token lacks. */
  get missingPermissions(): string[] {
    const missing = this.body?.details?.missingPermissions;
    return Array.isArray(missing) ? missing.filter((p): p is string => typeof p === 'string') : [];
  }

  /** The server does not have this endpoint at all (an older convault), as opposed to a missing object. */
  get isMissingRoute(): boolean {
    return this.status === 404 && (this.body?.message ?? '').startsWith('No route');
  }
}

export interface ApiClient {
  me(): Promise<Organization>;
  permissions(): Promise<string[]>;
  listKeyConfigurations(): Promise<KeyConfigurationList>;
  keyConfigurationTypes(): Promise<KeyConfigurationTypeInfo[]>;
  createKeyConfiguration(input: KeyConfigurationInput): Promise<KeyConfiguration>;
  saveKeyConfiguration(id: string, input: KeyConfigurationInput): Promise<KeyConfiguration>;
  testKeyConfiguration(input: KeyConfigurationInput): Promise<TestReport>;
  keyConfigurationHistory(configId: string): Promise<KeyConfigurationVersion[]>;
  keyPolicy(): Promise<KeyPolicy>;
  keyUsage(configId: string): Promise<KeyUsage>;
  startRewrap(configId: string): Promise<Job>;
  job(jobId: string): Promise<Job>;
  keyHealth(configId: string): Promise<KeyHealth>;
  probeKeyHealth(configId: string): Promise<KeyHealth>;
  audits(query: { action?: string; cursor?: string; limit?: number }): Promise<AuditPage>;
  tokens(): Promise<ApiToken[]>;
  createToken(input: { name: string; permissions: string[]; expiresAt?: string }): Promise<CreatedApiToken>;
  revokeToken(id: string): Promise<ApiToken>;
  rotateToken(id: string): Promise<CreatedApiToken>;
}

export interface ApiClientOptions {
  token: string;
  /** Called on any 401: the token expired or was revoked while the page was open. */
  onUnauthorized?: (error: ApiError) => void;
  fetch?: typeof fetch;
}

export function createApiClient({ token, onUnauthorized, fetch: fetchImpl = window.fetch.bind(window) }: ApiClientOptions): ApiClient {
  async function call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetchImpl(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (err) {
      throw new ApiError(0, undefined, `convault could not be reached (${(err as Error).message}). Check that the server is running, then try again.`);
    }
    const text = await response.text();
    const parsed = parseJson(text);
    if (response.ok) return parsed as T;
    const errorBody = isErrorBody(parsed) ? parsed : undefined;
    const retryAfter = Number(response.headers.get('retry-after') ?? errorBody?.details?.retryAfterSeconds);
    const error = new ApiError(
      response.status,
      errorBody,
      errorBody?.message ?? `The server answered ${response.status} ${response.statusText}.`,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
    if (response.status === 401) onUnauthorized?.(error);
    throw error;
  }

  const byId = (id: string) => `${KEY_CONFIGURATIONS}/${encodeURIComponent(id)}`;

  return {
    me: () => call<Organization>('GET', `${API}/organizations/me`),
    permissions: async () => (await call<{ permissions: string[] }>('GET', `${API}/organizations/me/permissions`)).permissions,
    listKeyConfigurations: () => call<KeyConfigurationList>('GET', KEY_CONFIGURATIONS),
    keyConfigurationTypes: async () => (await call<{ entities: KeyConfigurationTypeInfo[] }>('GET', `${KEY_CONFIGURATIONS}/types`)).entities,
    createKeyConfiguration: (input) => call<KeyConfiguration>('POST', KEY_CONFIGURATIONS, input),
    saveKeyConfiguration: (id, input) => call<KeyConfiguration>('PUT', byId(id), input),
    testKeyConfiguration: (input) => call<TestReport>('POST', `${KEY_CONFIGURATIONS}/validate`, input),
    keyConfigurationHistory: async (id) => (await call<{ entities: KeyConfigurationVersion[] }>('GET', `${byId(id)}/history`)).entities,
    keyPolicy: () => call<KeyPolicy>('GET', `${KEY_CONFIGURATIONS}/keypolicy`),
    keyUsage: (id) => call<KeyUsage>('GET', `${byId(id)}/usage`),
    startRewrap: (id) => call<Job>('POST', `${byId(id)}/rewrap`, {}),
    job: (jobId) => call<Job>('GET', `${API}/jobs/${encodeURIComponent(jobId)}`),
    keyHealth: (id) => call<KeyHealth>('GET', `${byId(id)}/health`),
    probeKeyHealth: (id) => call<KeyHealth>('POST', `${byId(id)}/health/probe`, {}),
    audits: ({ action, cursor, limit }) => {
      const query = new URLSearchParams();
      if (action) query.set('action', action);
      if (cursor) query.set('cursor', cursor);
      if (limit) query.set('limit', String(limit));
      const qs = query.toString();
      return call<AuditPage>('GET', `${API}/audits${qs ? `?${qs}` : ''}`);
    },
    tokens: async () => (await call<{ entities: ApiToken[] }>('GET', `${API}/tokens`)).entities,
    createToken: (input) => call<CreatedApiToken>('POST', `${API}/tokens`, input),
    revokeToken: (id) => call<ApiToken>('DELETE', `${API}/tokens/${encodeURIComponent(id)}`),
    rotateToken: (id) => call<CreatedApiToken>('POST', `${API}/tokens/${encodeURIComponent(id)}/rotate`, {}),
  };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && typeof (value as ErrorBody).message === 'string' && typeof (value as ErrorBody).status === 'number';
}

/** A sentence for any error, for places that show one. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403 && error.missingPermissions.length > 0) {
      return `Your token lacks ${error.missingPermissions.join(', ')}. Ask an administrator of your organization for a token with it.`;
    }
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
