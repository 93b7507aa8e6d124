/** The API token of the signed-in user: kept for this browser tab only (sessionStorage), cleared on sign-out. */
const TOKEN_KEY = 'convault.token';

export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined; // storage disabled: the user signs in again on reload
  }
}

export function storeToken(token: string): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the session lasts until reload
  }
}

export function clearSession(): void {
  try {
    sessionStorage.clear();
  } catch {
    // nothing stored
  }
}

/** The rewrap job last started for a configuration, so a reload keeps showing its progress. */
export function rememberJob(configId: string, jobId: string | undefined): void {
  try {
    const key = `convault.rewrapJob.${configId}`;
    if (jobId) sessionStorage.setItem(key, jobId);
    else sessionStorage.removeItem(key);
  } catch {
    // not remembered
  }
}

export function rememberedJob(configId: string): string | undefined {
  try {
    return sessionStorage.getItem(`convault.rewrapJob.${configId}`) ?? undefined;
  } catch {
    return undefined;
  }
}
