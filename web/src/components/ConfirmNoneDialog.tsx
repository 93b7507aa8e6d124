import { useEffect, useId, useRef } from 'react';
import type { KeyConfiguration } from '../api/types';

interface ConfirmNoneDialogProps {
  open: boolean;
  current: KeyConfiguration | undefined;
  onConfirm(): void;
  onCancel(): void;
}

/** A modal question before switching to None, saying what happens to new and to existing data. */
export function ConfirmNoneDialog({ open, current, onConfirm, onCancel }: ConfirmNoneDialogProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const keep = useRef<HTMLButtonElement>(null);
  const id = useId();

  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    if (open && !el.open) {
      el.showModal();
      keep.current?.focus(); // the safe choice has the focus, not the destructive one
    }
    if (!open && el.open) el.close();
  }, [open]);

  return (
    <dialog
      ref={dialog}
      className="dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-body`}
      onCancel={(e) => {
        e.preventDefault(); // Escape: close through our state, so it stays in step
        onCancel();
      }}
    >
      <h2 id={`${id}-title`}>Stop using your key for new data?</h2>
      <div id={`${id}-body`} className="stack">
        <p>
          With <strong>None</strong>, new secured data is protected by the platform's own KMS key instead of yours. It is never stored in
          plaintext.
        </p>
        <p>
          Data already written under your key{current?.url ? <> (<code className="arn">{current.url}</code>)</> : null} stays encrypted
          with it and is readable only as long as that key stays enabled and its policy allows the platform. Keep the key until Key usage
          shows it is safe to retire.
        </p>
      </div>
      <div className="actions">
        <button type="button" className="button danger" onClick={onConfirm}>
          Switch to None
        </button>
        <button ref={keep} type="button" className="button secondary" onClick={onCancel}>
          Keep my key
        </button>
      </div>
    </dialog>
  );
}
