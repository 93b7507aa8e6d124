import { ApiError, describeError } from '../api/client';

/** What a token without the permission sees instead of a failure. */
export function MissingPermission({ permission, what }: { permission: string; what: string }) {
  return (
    <div className="notice warning" role="status">
      <p>
        Your token lacks <code>{permission}</code>, so {what} cannot be shown. Ask an administrator of your organization for a token with
        that permission.
      </p>
    </div>
  );
}

/** An error of a load or an action, as a sentence, with the id to quote when reporting it. */
export function ErrorNotice({ error, retry }: { error: unknown; retry?: () => void }) {
  const contextId = error instanceof ApiError ? error.body?.contextId : undefined;
  return (
    <div className="notice error" role="alert">
      <p>{describeError(error)}</p>
      {contextId && <p className="small">Reference: {contextId}</p>}
      {retry && (
        <button type="button" className="button secondary" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}
