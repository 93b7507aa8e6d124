import { forwardRef, useId } from 'react';
import { ALIAS_ARN_FORM } from '../alias-arn';
import { FieldNotes } from './FieldNotes';

export const ALIAS_ARN_LABEL = 'ARN of the AWS KMS key alias for generating Customer Secured Data key';

interface AliasArnFieldProps {
  value: string;
  problem: string | undefined;
  disabled?: boolean;
  onChange(value: string): void;
  onBlur(): void;
}

/** The alias ARN text box: its hint, and the problem found as you type, both tied to the box. */
export const AliasArnField = forwardRef<HTMLInputElement, AliasArnFieldProps>(function AliasArnField(
  { value, problem, disabled, onChange, onBlur },
  ref,
) {
  const id = useId();
  const hintId = `${id}-hint`;
  const problemId = `${id}-problem`;
  return (
    <div className="field">
      <label htmlFor={id}>{ALIAS_ARN_LABEL}</label>
      <input
        ref={ref}
        id={id}
        name="url"
        type="text"
        inputMode="url"
        autoComplete="off"
        autoCapitalize="off"
        spellCheck={false}
        value={value}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
        onBlur={onBlur}
        aria-invalid={problem ? 'true' : undefined}
        aria-describedby={problem ? `${problemId} ${hintId}` : hintId}
      />
      <FieldNotes
        hintId={hintId}
        hint={
          <>
            The form is <code>{ALIAS_ARN_FORM}</code>. Enter the alias, not the key: you then rotate by pointing the alias at a new key.
          </>
        }
        problemId={problemId}
        problem={problem}
      />
    </div>
  );
});
