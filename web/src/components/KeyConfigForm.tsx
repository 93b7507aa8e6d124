import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { aliasArnProblem } from '../alias-arn';
import { ApiError, describeError } from '../api/client';
import type { KeyConfiguration, KeyConfigurationInput, KeyConfigurationType, KeyConfigurationTypeInfo, TestReport } from '../api/types';
import { useSession } from '../session-context';
import { AliasArnField } from './AliasArnField';
import { ConfirmNoneDialog } from './ConfirmNoneDialog';
import { fieldLabel, ProviderFields } from './ProviderFields';
import { TestReportView } from './TestReportView';

interface KeyConfigFormProps {
  current: KeyConfiguration | undefined;
  onSaved(config: KeyConfiguration): void;
  onCancel(): void;
  /** After a 409: show the configuration someone else saved. */
  onReload(): void;
}

type Problem = { kind: 'conflict' | 'error'; message: string };

function reportOf(err: ApiError): TestReport | undefined {
  const report = err.body?.details?.report as TestReport | undefined;
  return report && Array.isArray(report.steps) ? report : undefined;
}

/** Used until the server's type list arrives (or by a server without GET …/types). */
const BUILT_IN_TYPES: KeyConfigurationTypeInfo[] = [
  { keyConfigurationType: 'KmsSymmetric', label: 'AWS KMS Symmetric', customerOwned: true, supportsHealthProbe: true, supportsEncryptData: true, supportsServerSideRewrap: true, fields: [] },
  { keyConfigurationType: 'None', label: 'None', customerOwned: false, supportsHealthProbe: false, supportsEncryptData: false, supportsServerSideRewrap: true, fields: [] },
];

const TYPE_HINTS: Partial<Record<KeyConfigurationType, string>> = {
  KmsSymmetric: 'Your own AWS KMS symmetric key generates the data keys that protect your secured data.',
  LocalKeyManager:
    'Your key stays in your own HSM or key manager, behind an XKS proxy you run: convault has it wrap and unwrap each data key. Encrypt/Decrypt Data is not available with this type.',
  None: "None: new secured data is protected by the platform's own key. Data written under your key stays readable only while your key is usable.",
};

/** The public fields of a saved configuration, as the form's initial values. */
function initialValues(current: KeyConfiguration | undefined): Record<string, string> {
  if (!current || current.keyConfigurationType === 'KmsSymmetric' || current.keyConfigurationType === 'None') return {};
  const values: Record<string, string> = { url: current.url };
  for (const name of ['keyId', 'apiId', 'caBundle', 'clientCertificate'] as const) if (current[name]) values[name] = current[name]!;
  return values;
}

/** Edit: type (from the server's registry), its fields with inline validation, Test (nothing saved), Save, Cancel. */
export function KeyConfigForm({ current, onSaved, onCancel, onReload }: KeyConfigFormProps) {
  const { api } = useSession();
  const id = useId();
  const [type, setType] = useState<KeyConfigurationType>(current?.keyConfigurationType ?? 'KmsSymmetric');
  const [types, setTypes] = useState<KeyConfigurationTypeInfo[]>(BUILT_IN_TYPES);
  const [url, setUrl] = useState(current?.keyConfigurationType === 'KmsSymmetric' ? current.url : '');
  const [values, setValues] = useState<Record<string, string>>(() => initialValues(current));
  const [fieldProblems, setFieldProblems] = useState<Record<string, string | undefined>>({});
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState<'test' | 'save'>();
  const [result, setResult] = useState<{ report: TestReport; source: 'test' | 'save' }>();
  const [problem, setProblem] = useState<Problem>();
  const [confirmingNone, setConfirmingNone] = useState(false);
  const typeSelect = useRef<HTMLSelectElement>(null);
  const urlInput = useRef<HTMLInputElement>(null);

  useEffect(() => typeSelect.current?.focus(), []);
  useEffect(() => {
    let live = true;
    api.keyConfigurationTypes().then(
      (list) => live && list.length > 0 && setTypes(list),
      () => undefined, // an older server: the built-in types
    );
    return () => {
      live = false;
    };
  }, [api]);

  const spec = types.find((t) => t.keyConfigurationType === type);
  // KmsSymmetric keeps its own alias ARN box (inline ARN checks); another type draws its registry fields.
  const providerFields = type === 'KmsSymmetric' ? [] : spec?.fields ?? [];
  const savedSecrets = new Set(
    current?.keyConfigurationType === type ? providerFields.filter((f) => f.secret && current[f.name as keyof KeyConfiguration]).map((f) => f.name) : [],
  );

  const urlProblem = type === 'KmsSymmetric' ? aliasArnProblem(url) : undefined;
  const showUrlProblem = urlProblem !== undefined && (touched || url.trim() !== '');

  function body(): KeyConfigurationInput {
    if (type === 'None') return { keyConfigurationType: 'None' };
    if (type === 'KmsSymmetric') return { keyConfigurationType: 'KmsSymmetric', url: url.trim() };
    const input: Record<string, string> = {};
    for (const f of providerFields) {
      const value = f.format === 'pem' ? values[f.name] ?? '' : (values[f.name] ?? '').trim();
      if (value !== '') input[f.name] = value;
    }
    // A saved configuration's secrets are kept when left empty (the Test reads them by id).
    return { keyConfigurationType: type, ...input, ...(current && current.keyConfigurationType === type ? { id: current.id } : {}) };
  }

  /** A result belongs to the input it was made for: editing the input clears it. */
  function edited() {
    setResult(undefined);
    setProblem(undefined);
  }

  function inputIsValid(): boolean {
    if (type === 'KmsSymmetric') {
      if (urlProblem === undefined) return true;
      setTouched(true);
      urlInput.current?.focus();
      return false;
    }
    const problems: Record<string, string | undefined> = {};
    for (const f of providerFields) {
      if (f.required && !(values[f.name] ?? '').trim() && !savedSecrets.has(f.name)) problems[f.name] = `${fieldLabel(f)} is required.`;
    }
    setFieldProblems(problems);
    const first = providerFields.find((f) => problems[f.name]);
    if (!first) return true;
    document.getElementById(`${id}-form`)?.querySelector<HTMLElement>(`[name="${first.name}"]`)?.focus();
    return false;
  }

  async function runTest() {
    if (!inputIsValid()) return;
    setBusy('test');
    edited();
    try {
      setResult({ report: await api.testKeyConfiguration(body()), source: 'test' });
    } catch (err) {
      setProblem({ kind: 'error', message: describeError(err) });
    } finally {
      setBusy(undefined);
    }
  }

  function requestSave(event?: FormEvent) {
    event?.preventDefault();
    if (busy || !inputIsValid()) return;
    // Leaving the customer's key asks first; there is nothing to explain when no key was in use.
    if (type === 'None' && current !== undefined && current.keyConfigurationType !== 'None') setConfirmingNone(true);
    else void save();
  }

  async function save() {
    setConfirmingNone(false);
    setBusy('save');
    edited();
    try {
      const saved = current ? await api.saveKeyConfiguration(current.id, { ...body(), version: current.version }) : await api.createKeyConfiguration(body());
      onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && reportOf(err)) {
        setResult({ report: reportOf(err)!, source: 'save' });
      } else if (err instanceof ApiError && err.status === 409) {
        setProblem({ kind: 'conflict', message: `This key configuration was changed by someone else. Reload to see their change, then make yours again. (${err.message})` });
      } else {
        setProblem({ kind: 'error', message: describeError(err) });
      }
    } finally {
      setBusy(undefined);
    }
  }

  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>{current ? 'Edit key configuration' : 'Configure your key'}</h2>
      <form id={`${id}-form`} className="stack" onSubmit={requestSave} noValidate aria-busy={busy !== undefined}>
        <div className="field">
          <label htmlFor={`${id}-type`}>Key Configuration Type</label>
          <select
            ref={typeSelect}
            id={`${id}-type`}
            name="keyConfigurationType"
            value={type}
            onChange={(e) => {
              setType(e.target.value as KeyConfigurationType);
              edited();
            }}
            aria-describedby={`${id}-type-hint`}
          >
            {types.map((t) => (
              <option key={t.keyConfigurationType} value={t.keyConfigurationType}>
                {t.label}
              </option>
            ))}
          </select>
          <p id={`${id}-type-hint`} className="hint">
            {TYPE_HINTS[type] ?? spec?.label}
          </p>
        </div>

        {type === 'KmsSymmetric' && (
          <AliasArnField
            ref={urlInput}
            value={url}
            problem={showUrlProblem ? urlProblem : undefined}
            onChange={(value) => {
              setUrl(value);
              edited();
            }}
            onBlur={() => setTouched(true)}
          />
        )}

        {providerFields.length > 0 && (
          <ProviderFields
            fields={providerFields}
            values={values}
            savedSecrets={savedSecrets}
            problems={fieldProblems}
            onChange={(name, value) => {
              setValues((v) => ({ ...v, [name]: value }));
              setFieldProblems((p) => ({ ...p, [name]: undefined }));
              edited();
            }}
          />
        )}

        <div className="actions">
          <button type="button" className="button secondary" onClick={runTest} disabled={busy !== undefined}>
            {busy === 'test' ? 'Testing…' : 'Test'}
          </button>
          <button type="submit" className="button primary" disabled={busy !== undefined}>
            {busy === 'save' ? 'Saving…' : 'Save'}
          </button>
          <button type="button" className="button secondary" onClick={onCancel} disabled={busy === 'save'}>
            Cancel
          </button>
        </div>

        <div aria-live="polite" className="stack">
          {busy && (
            <p className="loading">{busy === 'test' ? `Testing the key: each step calls ${type === 'LocalKeyManager' ? 'your XKS proxy' : 'AWS KMS'}…` : 'Testing and saving…'}</p>
          )}
          {result && <TestReportView report={result.report} source={result.source} />}
          {problem && (
            <div className="notice error" role="alert">
              <p>{problem.message}</p>
              {problem.kind === 'conflict' && (
                <button type="button" className="button secondary" onClick={onReload}>
                  Reload
                </button>
              )}
            </div>
          )}
        </div>
      </form>
      <ConfirmNoneDialog open={confirmingNone} current={current} onConfirm={() => void save()} onCancel={() => setConfirmingNone(false)} />
    </section>
  );
}
