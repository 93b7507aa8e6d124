import { AppError, notFound } from '../errors.js';

/** The conversation has no secured data (never written, crypto-shredded, or another organization's). */
export const conversationNotFound = () => notFound('Secured data of this conversation');

/** The org data key that protected the conversation was destroyed (time-window shred): the data is gone for good. */
export const dataShredded = () =>
  new AppError(404, 'data.shredded', 'The secured data of this conversation was crypto-shredded: the key that protected it was destroyed.', 'DataShredded');

/**
 * Stored key material or an envelope did not authenticate: altered bytes, or rows moved between
 * attributes, conversations or organizations. Nothing is returned; the operator should restore the
 * rows from a backup. `attribute` names the attribute (names are not secret), never a value.
 */
export const dataIntegrityError = (what: string, details?: Record<string, unknown>) =>
  new AppError(
    500,
    'secured.data.integrity',
    `Stored secured data failed its integrity check (${what}); nothing was returned. The rows were altered or moved; restore them from a backup.`,
    'DataIntegrityError',
    details,
  );
