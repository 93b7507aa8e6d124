import { ConfigError, type Config } from '../../config.js';

/**
 * The webhook settings the service may use, checked at start-up: a URL without a secret is refused
 * (an unsigned webhook could be forged by anyone who can reach the receiver, and a secret made up
 * at start would differ on every node and every restart).
 */
export function webhookSettings(webhook: Config['webhook']): { url: string; secret: string; maxAttempts: number } | undefined {
  if (!webhook) return undefined;
  if (!webhook.secret) {
    throw new ConfigError(
      'CONVAULT_WEBHOOK_URL is set but CONVAULT_WEBHOOK_SECRET is not: set a secret of at least 16 characters (receivers verify X-Convault-Signature with it), or unset the URL',
    );
  }
  const url = new URL(webhook.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`Invalid CONVAULT_WEBHOOK_URL: must be an http(s) URL (got ${url.protocol})`);
  return { url: webhook.url, secret: webhook.secret, maxAttempts: webhook.maxAttempts };
}
