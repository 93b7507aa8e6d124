import { useId, useState } from 'react';
import { useSession } from '../session-context';
import { copyText } from '../clipboard';
import { useLoad } from '../use-load';
import { ErrorNotice, Loading } from './Notices';

/** The key-policy statements to paste into the customer's KMS key policy, with Copy. */
export function KeyPolicyPanel() {
  const { api } = useSession();
  const id = useId();
  const [policy, reload] = useLoad(() => api.keyPolicy(), [api]);
  const [copyStatus, setCopyStatus] = useState('');

  const text = policy.status === 'ready' ? JSON.stringify(policy.value.statement, null, 2) : '';

  async function copy() {
    const ok = await copyText(text);
    setCopyStatus(ok ? 'Copied the statements to the clipboard.' : 'Could not copy: select the statements and copy them yourself.');
  }

  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <div className="card-header">
        <h2 id={`${id}-heading`}>Key policy</h2>
        {policy.status === 'ready' && (
          <button type="button" className="button secondary" onClick={copy} aria-label="Copy key policy">
            Copy
          </button>
        )}
      </div>
      {policy.status === 'loading' && <Loading what="the key policy" />}
      {policy.status === 'error' && <ErrorNotice error={policy.error} retry={reload} />}
      {policy.status === 'ready' && (
        <>
          <p>
            Add these statements to the <code>Statement</code> list of your KMS key's policy. They let the platform account{' '}
            <code>{policy.value.platformAccountId}</code> use the key only with your organization id{' '}
            <code>{policy.value.organizationId}</code> in the encryption context <code>{policy.value.encryptionContextKey}</code>, so the
            platform can never use your key for another organization.
          </p>
          <p className="copy-status" role="status">
            {copyStatus}
          </p>
          <pre className="code" tabIndex={0} aria-label="Key policy statements">
            <code>{text}</code>
          </pre>
        </>
      )}
    </section>
  );
}
