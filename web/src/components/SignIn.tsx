import { useId, useState, type FormEvent } from 'react';

interface SignInProps {
  onSignIn(token: string): Promise<string | undefined>;
  notice?: string;
}

/** The API token form. The token stays in this browser tab (sessionStorage) until Sign out. */
export function SignIn({ onSignIn, notice }: SignInProps) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const id = useId();

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (token.trim() === '') return setProblem('Enter your API token.');
    setBusy(true);
    setProblem(undefined);
    const result = await onSignIn(token.trim());
    setBusy(false);
    if (result) setProblem(result);
  }

  return (
    <main id="main" className="page narrow" tabIndex={-1}>
      <h1>Sign in</h1>
      {notice && <p className="notice" role="status">{notice}</p>}
      <form className="card stack" onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor={`${id}-token`}>API token</label>
          <input
            id={`${id}-token`}
            name="token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            aria-invalid={problem ? 'true' : undefined}
            aria-describedby={`${id}-hint${problem ? ` ${id}-problem` : ''}`}
          />
          <p id={`${id}-hint`} className="hint">
            A token with <code>conversation:encryptionKey:view</code> (and <code>:edit</code> to change the key). The first start of{' '}
            <code>convault serve</code> prints the admin token and writes it to <code>data/admin-token</code>. It is kept in this browser tab
            only, until you sign out.
          </p>
          {problem && (
            <p id={`${id}-problem`} className="field-error" role="alert">
              {problem}
            </p>
          )}
        </div>
        <div className="actions">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
      </form>
    </main>
  );
}
