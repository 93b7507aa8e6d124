import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { aliasArnProblem } from '../alias-arn';
import { ApiError, describeError } from '../api/client';
import type { KeyConfiguration, KeyConfigurationInput, KeyConfigurationType, TestReport } from '../api/types';
import { useSession } from '../session-context';
import { AliasArnField } from './AliasArnField';
import { ConfirmNoneDialog } from './ConfirmNoneDialog';
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

/** Edit: type, alias ARN with inline validation, Test (nothing saved), Save, Cancel. */
export function KeyConfigForm({ current, onSaved, onCancel, onReload }: KeyConfigFormProps) {
  const { api } = useSession();
  const id = useId();
  const [type, setType] = useState<KeyConfigurationType>(current?.keyConfigurationType ?? 'KmsSymmetric');
  const [url, setUrl] = useState(current?.url ?? '');
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState<'test' | 'save'>();
  const [result, setResult] = useState<{ report: TestReport; source: 'test' | 'save' }>();
  const [problem, setProblem] = useState<Problem>();
  const [confirmingNone, setConfirmingNone] = useState(false);
  const typeSelect = useRef<HTMLSelectElement>(null);
  const urlInput = useRef<HTMLInputElement>(null);

  useEffect(() => typeSelect.current?.focus(), []);

  const urlProblem = type === 'KmsSymmetric' ? aliasArnProblem(url) : undefined;
  const showUrlProblem = urlProblem !== undefined && (touched || url.trim() !== '');

  function body(): KeyConfigurationInput {
    return type === 'None' ? { keyConfigurationType: 'None' } : { keyConfigurationType: 'KmsSymmetric', url: url.trim() };
  }

  /** A result belongs to the input it was made for: editing the input clears it. */
  function edited() {
    setResult(undefined);
    setProblem(undefined);
  }

  function inputIsValid(): boolean {
    if (urlProblem === undefined) return true;
    setTouched(true);
    urlInput.current?.focus();
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
    if (type === 'None' && current?.keyConfigurationType === 'KmsSymmetric') setConfirmingNone(true);
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
      <form className="stack" onSubmit={requestSave} noValidate aria-busy={busy !== undefined}>
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
            <option value="KmsSymmetric">AWS KMS Symmetric</option>
            <option value="None">None</option>
          </select>
          <p id={`${id}-type-hint`} className="hint">
            {type === 'KmsSymmetric'
              ? 'Your own AWS KMS symmetric key generates the data keys that protect your secured data.'
              : "None: new secured data is protected by the platform's own key. Data written under your key stays readable only while your key is usable."}
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
            <p className="loading">{busy === 'test' ? 'Testing the key: each step calls AWS KMS…' : 'Testing and saving…'}</p>
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
