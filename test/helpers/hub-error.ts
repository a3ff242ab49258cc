import { expect } from 'vitest';
import { HubError } from '../../src/hub/hub-error.js';

/**
 * Awaits p, which must reject with a HubError whose message is one line and holds the secret
 * (the token) neither in the message nor in the stack. Returns the error for further checks.
 */
export async function expectHubError(p: Promise<unknown>, secret: string): Promise<HubError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    const e = err as HubError;
    expect(e.message).not.toMatch(/[\r\n]/);
    expect(e.message).not.toContain(secret);
    expect(e.stack ?? '').not.toContain(secret);
    return e;
  }
  throw new Error('expected a HubError, but the call succeeded');
}
