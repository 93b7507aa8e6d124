import type { ReactNode } from 'react';

/** A field's hint and, when there is one, its problem: both named by the input's aria-describedby. */
export function FieldNotes({ hintId, hint, problemId, problem }: { hintId: string; hint: ReactNode; problemId: string; problem: string | undefined }) {
  return (
    <>
      <p id={hintId} className="hint">
        {hint}
      </p>
      {problem && (
        <p id={problemId} className="field-error">
          {problem}
        </p>
      )}
    </>
  );
}
