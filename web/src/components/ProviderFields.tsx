import { useId } from 'react';
import type { KeyFieldInfo } from '../api/types';
import { FieldNotes } from './FieldNotes';

/** Labels a person reads; the registry's description becomes the hint. */
const FIELD_LABELS: Record<string, string> = {
  url: 'XKS proxy URI prefix',
  keyId: 'External key id',
  apiId: 'API id (SigV4 access key id)',
  apiKey: 'API key (SigV4 secret access key)',
  caBundle: 'CA bundle (PEM, optional)',
  clientCertificate: 'Client certificate for mutual TLS (PEM, optional)',
  clientKey: 'Client private key for mutual TLS (PEM, optional)',
};

export function fieldLabel(field: KeyFieldInfo): string {
  return FIELD_LABELS[field.name] ?? field.description;
}

interface ProviderFieldsProps {
  fields: KeyFieldInfo[];
  values: Record<string, string>;
  /** Secret fields the saved configuration already holds: left empty, they are kept. */
  savedSecrets: ReadonlySet<string>;
  problems: Record<string, string | undefined>;
  onChange(name: string, value: string): void;
}

/**
 * The fields of a key configuration type, drawn from the server's registry: text, a password box
 * for a secret (never filled back: the server answers it masked), several lines for PEM text.
 */
export function ProviderFields({ fields, values, savedSecrets, problems, onChange }: ProviderFieldsProps) {
  const id = useId();
  return (
    <>
      {fields.map((field) => {
        const inputId = `${id}-${field.name}`;
        const hintId = `${inputId}-hint`;
        const problemId = `${inputId}-problem`;
        const problem = problems[field.name];
        const common = {
          id: inputId,
          name: field.name,
          value: values[field.name] ?? '',
          autoComplete: 'off',
          spellCheck: false,
          'aria-invalid': problem ? ('true' as const) : undefined,
          'aria-describedby': problem ? `${problemId} ${hintId}` : hintId,
        };
        const saved = field.secret && savedSecrets.has(field.name);
        return (
          <div className="field" key={field.name}>
            <label htmlFor={inputId}>{fieldLabel(field)}</label>
            {field.format === 'pem' ? (
              <textarea {...common} rows={4} placeholder={saved ? 'Saved (not shown): leave empty to keep it' : '-----BEGIN …'} onChange={(e) => onChange(field.name, e.target.value)} />
            ) : (
              <input
                {...common}
                type={field.secret ? 'password' : 'text'}
                autoCapitalize="off"
                placeholder={saved ? '******** (saved: leave empty to keep it)' : undefined}
                onChange={(e) => onChange(field.name, e.target.value)}
              />
            )}
            <FieldNotes hintId={hintId} hint={`${field.description}${field.secret ? '. Write-only: stored encrypted, never shown again.' : ''}`} problemId={problemId} problem={problem} />
          </div>
        );
      })}
    </>
  );
}
