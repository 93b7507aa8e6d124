import { describe, expect, it } from 'vitest';
import { answeredFields, parseStoredFields, SECRET_MASK } from './keyconfig-model.js';

describe('the stored fields of a key configuration', () => {
  it('reads a configuration without fields, or with a part missing, as empty', () => {
    expect(parseStoredFields(null)).toStrictEqual({ public: {}, secrets: [] });
    expect(parseStoredFields('{}')).toStrictEqual({ public: {}, secrets: [] });
    expect(parseStoredFields('{"public":{"keyId":"k1"}}')).toStrictEqual({ public: { keyId: 'k1' }, secrets: [] });
    expect(parseStoredFields('{"secrets":["apiKey"]}')).toStrictEqual({ public: {}, secrets: ['apiKey'] });
  });

  it('answers the public fields that are set and the set secrets masked, nothing else', () => {
    const stored = JSON.stringify({ public: { keyId: 'k1', apiId: 'AKID' }, secrets: ['apiKey'] });
    expect(answeredFields('LocalKeyManager', stored)).toStrictEqual({ keyId: 'k1', apiId: 'AKID', apiKey: SECRET_MASK });
    expect(answeredFields('LocalKeyManager', null)).toStrictEqual({});
  });

  it('never answers a url from the fields: the url is the configuration\'s own', () => {
    expect(answeredFields('KmsSymmetric', JSON.stringify({ public: { url: 'arn:aws:kms:us-east-1:111122223333:alias/old' }, secrets: [] }))).toStrictEqual({});
  });
});
