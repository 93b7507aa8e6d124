interface TopBarProps {
  orgName?: string;
  onSignOut?: () => void;
}

/** The product name, where you are (Admin › Encryption Keys), and who is signed in. */
export function TopBar({ orgName, onSignOut }: TopBarProps) {
  return (
    <header className="topbar">
      <div className="topbar-inner">
        <span className="brand">convault</span>
        {orgName !== undefined && (
          <nav aria-label="Breadcrumb" className="breadcrumb">
            <ol>
              <li>Admin</li>
              <li aria-current="page">Encryption Keys</li>
            </ol>
          </nav>
        )}
        {onSignOut && (
          <div className="account">
            <span className="org-name" title="Your organization">
              {orgName}
            </span>
            <button type="button" className="button secondary" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        )}
      </div>
    </header>
  );
}
