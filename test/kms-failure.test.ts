import { describe, expect, it } from 'vitest';
import { classifyKmsError, KmsCallError, type KmsFailureKind } from '../src/kms/kms-failure.js';

/**
 * What a caller can act on is the failure kind: the breaker counts only Unreachable, the API maps
 * AccessDenied/Disabled/NotFound to the key problems it reports, Throttled to a retry. So every SDK
 * exception name and every network failure is classified here, one by one.
 */

const sdkError = (name: string, extra: object = {}) => Object.assign(new Error(`${name} happened`), { name, ...extra });

describe('classifyKmsError', () => {
  it.each<[string, KmsFailureKind]>([
    ['AccessDeniedException', 'AccessDenied'],
    ['NotFoundException', 'NotFound'],
    ['DisabledException', 'Disabled'],
    ['KMSInvalidStateException', 'InvalidState'],
    ['KeyUnavailableException', 'Unreachable'],
    ['InvalidCiphertextException', 'InvalidCiphertext'],
    ['IncorrectKeyException', 'IncorrectKey'],
    ['ThrottlingException', 'Throttled'],
    ['LimitExceededException', 'Throttled'],
    ['DependencyTimeoutException', 'Unreachable'],
    ['KMSInternalException', 'Internal'],
    ['ValidationException', 'InvalidRequest'],
    ['InvalidKeyUsageException', 'InvalidRequest'],
    ['InvalidArnException', 'NotFound'],
    ['UnrecognizedClientException', 'AccessDenied'],
    ['InvalidSignatureException', 'AccessDenied'],
  ])('maps the SDK exception %s to %s, keeping its name and message', (name, kind) => {
    // The HTTP status of an AWS answer must not override the exception's own meaning.
    for (const httpStatusCode of [400, 500]) {
      const err = classifyKmsError(sdkError(name, { $metadata: { httpStatusCode } }), 'Decrypt');
      expect(err).toBeInstanceOf(KmsCallError);
      expect(err).toMatchObject({ name: 'KmsCallError', kind, awsName: name, message: `${name} happened`, operation: 'Decrypt' });
    }
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'])(
    'counts the network error %s as Unreachable, on the error or on its cause',
    (code) => {
      expect(classifyKmsError(sdkError('Error', { code }), 'Encrypt')).toMatchObject({ kind: 'Unreachable', awsName: code, operation: 'Encrypt' });
      expect(classifyKmsError(sdkError('Error', { cause: { code } }), 'Encrypt')).toMatchObject({ kind: 'Unreachable', awsName: code });
    },
  );

  it('counts SDK timeouts and aborted requests as Unreachable, under their own name', () => {
    expect(classifyKmsError(sdkError('TimeoutError'), 'Decrypt')).toMatchObject({ kind: 'Unreachable', awsName: 'TimeoutError' });
    expect(classifyKmsError(sdkError('AbortError'), 'Decrypt')).toMatchObject({ kind: 'Unreachable', awsName: 'AbortError' });
  });

  it('does not count other error codes as a network failure', () => {
    expect(classifyKmsError(sdkError('Error', { code: 'EACCES' }), 'Decrypt')).toMatchObject({ kind: 'Internal', awsName: 'Error' });
    expect(classifyKmsError(sdkError('Error', { cause: { code: 'ERR_INVALID_URL' } }), 'Decrypt').kind).toBe('Internal');
  });

  it('classifies unknown exceptions by HTTP status: 5xx unreachable, 429 throttled, anything else internal', () => {
    const withStatus = (status: number | undefined) => classifyKmsError(sdkError('SomethingNewException', { $metadata: { httpStatusCode: status } }), 'GenerateDataKey');
    expect(withStatus(500)).toMatchObject({ kind: 'Unreachable', awsName: 'SomethingNewException', operation: 'GenerateDataKey' });
    expect(withStatus(503).kind).toBe('Unreachable');
    expect(withStatus(499).kind).toBe('Internal');
    expect(withStatus(429)).toMatchObject({ kind: 'Throttled', awsName: 'SomethingNewException', operation: 'GenerateDataKey' });
    expect(withStatus(400)).toMatchObject({ kind: 'Internal', awsName: 'SomethingNewException', operation: 'GenerateDataKey' });
    expect(withStatus(undefined).kind).toBe('Internal');
    expect(classifyKmsError(sdkError('SomethingNewException'), 'Decrypt').kind).toBe('Internal');
  });

  it('takes anything thrown, not only errors', () => {
    expect(classifyKmsError('socket hang up', 'Decrypt')).toMatchObject({ kind: 'Internal', awsName: 'Error', message: 'socket hang up' });
    expect(classifyKmsError(undefined, 'Decrypt')).toMatchObject({ kind: 'Internal', awsName: 'Error', message: 'undefined' });
    expect(classifyKmsError(null, 'Decrypt')).toMatchObject({ kind: 'Internal', awsName: 'Error', message: 'null' });
    expect(classifyKmsError({ name: 'Odd' }, 'Decrypt')).toMatchObject({ kind: 'Internal', awsName: 'Odd', message: '[object Object]' });
  });

  it('passes an already classified failure through unchanged', () => {
    const failure = new KmsCallError('Throttled', 'CircuitOpen', 'paused', 'Encrypt');
    expect(classifyKmsError(failure, 'Decrypt')).toBe(failure);
  });
});
