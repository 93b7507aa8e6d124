import { useEffect, useState } from 'react';
import { AuditTab } from './AuditTab';
import { ConversationsTab } from './ConversationsTab';
import { Tabs } from './Tabs';
import { TokensTab } from './TokensTab';

const TAB_IDS = ['conversations', 'audit', 'tokens'] as const;

function tabFromHash(): string {
  const id = window.location.hash.replace(/^#/, '');
  return (TAB_IDS as readonly string[]).includes(id) ? id : 'conversations';
}

/** Admin › Encryption Keys: the Conversations key configuration, and the audit trail. */
export function EncryptionKeysPage() {
  const [tab, setTab] = useState(tabFromHash);

  useEffect(() => {
    const onHashChange = () => setTab(tabFromHash());
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);

  function select(id: string) {
    setTab(id);
    window.history.replaceState(null, '', id === 'conversations' ? window.location.pathname : `#${id}`);
  }

  return (
    <main id="main" className="page" tabIndex={-1}>
      <h1>Encryption Keys</h1>
      <p className="lead">
        Protect your organization's secured conversation data with your own AWS KMS key: configure it, test it, rotate it, and see
        which keys still protect data.
      </p>
      <Tabs
        label="Encryption keys"
        selected={tab}
        onSelect={select}
        tabs={[
          { id: 'conversations', label: 'Conversations', render: () => <ConversationsTab /> },
          { id: 'audit', label: 'Audit', render: (active) => <AuditTab active={active} /> },
          { id: 'tokens', label: 'Tokens', render: (active) => <TokensTab active={active} /> },
        ]}
      />
    </main>
  );
}
