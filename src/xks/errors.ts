import { XKS_ERROR_STATUS, XKS_LIMITS, type XksErrorBody, type XksErrorName } from '../xks-protocol/index.js';

/** An error the proxy answers with: the specification's name, its status, and a message safe to send. */
export class XksProxyError extends Error {
  readonly status: number;
  constructor(
    readonly errorName: XksErrorName,
    message: string,
  ) {
    super(message);
    this.status = XKS_ERROR_STATUS[errorName];
  }

  body(): XksErrorBody {
    // The message must be printable ASCII under 512 characters; key ids and field names are ASCII already.
    const errorMessage = this.message.replace(/[^\x20-\x7e]/g, '?').slice(0, XKS_LIMITS.maxErrorMessageChars);
    return { errorName: this.errorName, errorMessage };
  }
}
