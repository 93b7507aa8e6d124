import type { TestReport, TestStep } from '../api/types';
import { forThisPage, stepLabel } from '../format';

interface TestReportViewProps {
  report: TestReport;
  /** What produced it: a Test, or a Save the server refused because its Test failed. */
  source: 'test' | 'save';
}

function stepState(step: TestStep): 'passed' | 'warning' | 'failed' {
  return step.ok ? 'passed' : step.advisory ? 'warning' : 'failed';
}

const MARK = { passed: '✓', warning: '!', failed: '✗' } as const;
const STATE_TEXT = { passed: 'Passed', warning: 'Warning', failed: 'Failed' } as const;

/** Each step of a Test: ✓ / ✗, how long it took, what it found, and what to do when it failed. */
export function TestReportView({ report, source }: TestReportViewProps) {
  const failed = report.steps.find((s) => !s.ok && !s.advisory);
  const summary = report.ok
    ? 'Test passed: the key works for this organization. Nothing was saved.'
    : `${source === 'save' ? 'Not saved: the Test failed' : 'Test failed'}${failed ? ` at step “${stepLabel(failed.step)}”` : ''}. ${
        source === 'save' ? 'Fix what the step says, then Save again.' : 'Nothing was saved.'
      }`;
  return (
    <section className={`report ${report.ok ? 'report-ok' : 'report-failed'}`} aria-label="Test result">
      <p className="report-summary">
        <span aria-hidden="true">{report.ok ? '✓ ' : '✗ '}</span>
        {summary}
      </p>
      {report.keyArn && (
        <p className="small">
          The alias resolves to <code className="arn">{report.keyArn}</code>
        </p>
      )}
      <ol className="steps">
        {report.steps.map((step, index) => {
          const state = stepState(step);
          return (
            <li key={`${step.step}-${index}`} className={`step step-${state}`} data-step={step.step}>
              <div className="step-line">
                <span className="mark" aria-hidden="true">
                  {MARK[state]}
                </span>
                <span className="visually-hidden">{STATE_TEXT[state]}:</span>
                <span className="step-name">{stepLabel(step.step)}</span>
                <span className="step-ms">{Math.round(step.ms)} ms</span>
              </div>
              {step.detail && <p className="step-detail">{step.detail}</p>}
              {step.error?.message && !(step.advisory && step.detail) && (
                <p className="step-remediation">
                  {forThisPage(step.error.message)}
                  {step.error.awsError && <span className="small"> ({step.error.awsError})</span>}
                </p>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
