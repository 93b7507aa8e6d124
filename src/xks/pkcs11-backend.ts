import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { DecryptFailed, type KeyBackend } from './key-backend.js';

/**
 * Keys kept in a PKCS#11 token (an HSM, or SoftHSM2 for evaluation) through pkcs11js: each key is
 * a token object of class CKO_SECRET_KEY, type CKK_AES, 32 bytes, sensitive and not extractable,
 * found by CKA_ID = the external key id. AES-GCM (CKM_AES_GCM, 96-bit IV from the token's RNG,
 * 128-bit tag) runs inside the token; the key's bytes never reach this process.
 *
 * pkcs11js calls are synchronous, so one session serves every request without interleaving.
 */

export interface Pkcs11Options {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  modulePath: string;
  /** Label of the token to use; absent → the first slot with an initialized token. */
  tokenLabel?: string;
  /** User PIN of the token. */
  pin: string;
}

export class Pkcs11SetupError extends Error {}

const require = createRequire(import.meta.url);
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A module is initialized once per process (a second C_Initialize fails): backends on the same
 * module share it, and the last one to close finalizes it.
 */
const loaded = new Map<string, { module: Pkcs11Types.PKCS11; users: number }>();

function acquireModule(p: typeof Pkcs11Types, modulePath: string): Pkcs11Types.PKCS11 {
  const entry = loaded.get(modulePath);
  if (entry) {
    entry.users += 1;
    return entry.module;
  }
  const module = new p.PKCS11();
  try {
    module.load(modulePath);
    module.C_Initialize();
  } catch (err) {
    throw new Pkcs11SetupError(`cannot load PKCS#11 module ${modulePath}: ${(err as Error).message}`);
  }
  loaded.set(modulePath, { module, users: 1 });
  return module;
}

function releaseModule(modulePath: string): void {
  const entry = loaded.get(modulePath);
  if (!entry || --entry.users > 0) return;
  loaded.delete(modulePath);
  entry.module.C_Finalize();
}

export function openPkcs11Backend(opts: Pkcs11Options): KeyBackend {
  // Loaded on demand: a proxy without --pkcs11-module never needs the native addon.
  const p = require('pkcs11js') as typeof Pkcs11Types;
  const module = acquireModule(p, opts.modulePath);
  let session: Buffer | undefined;
  let token: { label: string; model: string; manufacturer: string; serial: string };
  try {
    const slots = module.C_GetSlotList(true);
    const found = slots
      .map((slot) => ({ slot, info: module.C_GetTokenInfo(slot) }))
      .find(({ info }) => (info.flags & p.CKF_TOKEN_INITIALIZED) !== 0 && (opts.tokenLabel === undefined || info.label.trim() === opts.tokenLabel));
    if (!found) {
      throw new Pkcs11SetupError(
        opts.tokenLabel === undefined ? `no initialized token in ${opts.modulePath}` : `no token labelled "${opts.tokenLabel}" in ${opts.modulePath}`,
      );
    }
    token = {
      label: found.info.label.trim(),
      model: found.info.model.trim(),
      manufacturer: found.info.manufacturerID.trim(),
      serial: found.info.serialNumber.trim(),
    };
    session = module.C_OpenSession(found.slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    try {
      module.C_Login(session, p.CKU_USER, opts.pin);
    } catch (err) {
      // Login is per token and process: another backend of this process may have logged in already.
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test((err as Error).message)) {
        throw new Pkcs11SetupError(`cannot log in to token "${token.label}": ${(err as Error).message}`);
      }
    }
  } catch (err) {
    if (session) module.C_CloseSession(session);
    releaseModule(opts.modulePath);
    throw err;
  }
  const openSession: Buffer = session;

  const handles = new Map<string, Buffer>();

  function findKey(keyId: string): Buffer | undefined {
    const cached = handles.get(keyId);
    if (cached) return cached;
    module.C_FindObjectsInit(openSession, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_ID, value: Buffer.from(keyId, 'utf8') },
    ]);
    try {
      const [handle] = module.C_FindObjects(openSession, 1);
      if (handle) handles.set(keyId, handle);
      return handle;
    } finally {
      module.C_FindObjectsFinal(openSession);
    }
  }

  function generateAesKey(keyId: string, onToken: boolean): Buffer {
    return module.C_GenerateKey(openSession, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_TOKEN, value: onToken },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_LABEL, value: keyId },
      { type: p.CKA_ID, value: Buffer.from(keyId, 'utf8') },
      { type: p.CKA_ENCRYPT, value: true },
      { type: p.CKA_DECRYPT, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
    ]);
  }

  function gcm(iv: Buffer, aad: Buffer) {
    return { mechanism: p.CKM_AES_GCM, parameter: { type: p.CK_PARAMS_GCM, iv, ivBits: iv.length * 8, aad, tagBits: TAG_BYTES * 8 } };
  }

  function requireKey(keyId: string): Buffer {
    const handle = findKey(keyId);
    if (!handle) throw new Error(`key ${keyId} is registered as a PKCS#11 key but token "${token.label}" holds no secret key with CKA_ID ${keyId}`);
    return handle;
  }

  function encryptWith(handle: Buffer, plaintext: Buffer, aad: Buffer) {
    const iv = module.C_GenerateRandom(openSession, Buffer.alloc(IV_BYTES));
    module.C_EncryptInit(openSession, gcm(iv, aad), handle);
    // The token returns ciphertext || tag; the API carries them apart.
    const out = module.C_Encrypt(openSession, plaintext, Buffer.alloc(plaintext.length + TAG_BYTES));
    return { iv, ciphertext: Buffer.from(out.subarray(0, plaintext.length)), tag: Buffer.from(out.subarray(plaintext.length)) };
  }

  function decryptWith(handle: Buffer, { iv, ciphertext, tag, aad }: { iv: Buffer; ciphertext: Buffer; tag: Buffer; aad: Buffer }) {
    try {
      module.C_DecryptInit(openSession, gcm(iv, aad), handle);
      return Buffer.from(module.C_Decrypt(openSession, Buffer.concat([ciphertext, tag]), Buffer.alloc(ciphertext.length + TAG_BYTES)));
    } catch {
      // Tokens report a failed tag check differently (SoftHSM2: CKR_GENERAL_ERROR, others CKR_ENCRYPTED_DATA_INVALID).
      throw new DecryptFailed();
    }
  }

  // The health check's test key: a session object, gone when the proxy stops, never a customer's key.
  const healthKey = generateAesKey('__xks_health_check__', false);

  return {
    name: 'pkcs11',
    async createKey(keyId) {
      if (findKey(keyId)) throw new Error(`token "${token.label}" already holds a secret key with CKA_ID ${keyId}`);
      handles.set(keyId, generateAesKey(keyId, true));
      return null;
    },
    async encrypt(key, plaintext, aad) {
      return encryptWith(requireKey(key.key_id), plaintext, aad);
    },
    async decrypt(key, input) {
      return decryptWith(requireKey(key.key_id), input);
    },
    async health() {
      let healthStatus: 'ACTIVE' | 'UNAVAILABLE' = 'UNAVAILABLE';
      try {
        const sample = module.C_GenerateRandom(openSession, Buffer.alloc(32));
        const sealed = encryptWith(healthKey, sample, Buffer.alloc(1));
        if (decryptWith(healthKey, { ...sealed, aad: Buffer.alloc(1) }).equals(sample)) healthStatus = 'ACTIVE';
      } catch {
        // reported as UNAVAILABLE
      }
      return { id: `${token.label} (${token.serial})`, model: `${token.model} by ${token.manufacturer}`, vendor: token.manufacturer, healthStatus };
    },
    async close() {
      try {
        module.C_CloseSession(openSession);
      } finally {
        releaseModule(opts.modulePath);
      }
    },
  };
}
