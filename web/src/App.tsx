import { useCallback, useEffect, useState } from 'react';
import { ApiError, createApiClient, describeError } from './api/client';
import { EncryptionKeysPage } from './components/EncryptionKeysPage';
import { SignIn } from './components/SignIn';
import { TopBar } from './components/TopBar';
import { clearSession, storedToken, storeToken } from './session';
import { SessionProvider, type Session } from './session-context';

type AppState =
  | { status: 'signed-out'; notice?: string }
  | { status: 'restoring' }
  | { status: 'signed-in'; session: Session };

/** Signs in with an API token (kept in sessionStorage for this tab) and shows Admin › Encryption Keys. */
export function App() {
  const [state, setState] = useState<AppState>(() => (storedToken() ? { status: 'restoring' } : { status: 'signed-out' }));

  const signOut = useCallback((notice?: string) => {
    clearSession();
    setState({ status: 'signed-out', notice });
  }, []);

  /** Checks the token against the server; resolves with a sentence when it cannot be used. */
  const signIn = useCallback(
    async (token: string): Promise<string | undefined> => {
      // A token refused at sign-in is a typo, not an ended session: the form says so itself.
      let signedIn = false;
      const api = createApiClient({
        token,
        onUnauthorized: () => {
          if (signedIn) signOut('Your session ended: the token is no longer valid. Sign in again.');
        },
      });
      try {
        const org = await api.me();
        const permissions = await api.permissions().then(
          (list) => new Set(list),
          (err: unknown) => {
            if (err instanceof ApiError && err.isMissingRoute) return undefined; // older server: let each call decide
            throw err;
          },
        );
        storeToken(token);
        signedIn = true;
        setState({ status: 'signed-in', session: { api, org, permissions } });
        return undefined;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return 'That token is not valid: check it and try again.';
        return describeError(err);
      }
    },
    [signOut],
  );

  useEffect(() => {
    if (state.status !== 'restoring') return;
    const token = storedToken();
    if (!token) return setState({ status: 'signed-out' });
    void signIn(token).then((problem) => {
      if (problem) signOut(problem);
    });
  }, [state.status, signIn, signOut]);

  useEffect(() => {
    document.title = state.status === 'signed-in' ? 'Encryption Keys · convault' : 'Sign in · convault';
  }, [state.status]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      {state.status === 'signed-in' ? (
        <SessionProvider value={state.session}>
          <TopBar orgName={state.session.org.name} onSignOut={() => signOut('You are signed out.')} />
          <EncryptionKeysPage />
        </SessionProvider>
      ) : (
        <>
          <TopBar />
          {state.status === 'restoring' ? (
            <main id="main" className="page" tabIndex={-1}>
              <p role="status">Signing in…</p>
            </main>
          ) : (
            <SignIn onSignIn={signIn} notice={state.notice} />
          )}
        </>
      )}
    </>
  );
}
