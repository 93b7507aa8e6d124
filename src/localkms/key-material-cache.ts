/**
 * Opened key material, per key id, so that a cryptographic request does not decrypt the key's
 * material under the root key every time.
 *
 * Why this is safe with several nodes on one database: a key's material never changes. It is sealed
 * once by CreateKey and afterwards only erased (when the key is deleted); key ids are never reused.
 * And the cache never decides whether a key may be used: the operations read the key's row on every
 * request and check its state and policy first. The cached material is handed out only when that
 * freshly read row still carries exactly the sealed bytes it was opened from, so a key deleted
 * meanwhile (material erased in the row) never reaches it.
 *
 * Plaintext material stays in this process's memory while cached: bounded, zeroed on eviction and on
 * close — the same exposure the server already had during each request, for longer.
 */

interface Entry {
  /** The sealed material as stored in the row; the entry serves only a row with these very bytes. */
  sealed: Buffer;
  material: Buffer;
}

export class KeyMaterialCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = 10_000) {}

  /**
   * The opened material of `keyId`, whose row holds `sealed`; `open` runs on a miss. The buffer is
   * shared: use it synchronously and never alter or zero it.
   */
  get(keyId: string, sealed: Buffer, open: () => Buffer): Buffer {
    const hit = this.entries.get(keyId);
    if (hit && hit.sealed.equals(sealed)) return hit.material;
    const material = open();
    this.forget(keyId);
    if (this.entries.size >= this.maxEntries) this.evictOldest();
    this.entries.set(keyId, { sealed: Buffer.from(sealed), material });
    return material;
  }

  /** Drops and zeroes the entry of a key (e.g. one seen deleted). */
  forget(keyId: string): void {
    const entry = this.entries.get(keyId);
    if (!entry) return;
    entry.material.fill(0);
    this.entries.delete(keyId);
  }

  clear(): void {
    for (const entry of this.entries.values()) entry.material.fill(0);
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private evictOldest(): void {
    const oldest = this.entries.keys().next();
    if (!oldest.done) this.forget(oldest.value);
  }
}
