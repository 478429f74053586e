// Admission's answer to a registry failure is "could not decide" (503), not "denied by policy"
// (403): a referrers list past the read bound is the registry's state, like any REGISTRY_ERROR.
import { expect, it } from '@jest/globals';
import { denyFor } from '../../src/k8s/admit.js';
import { CtError } from '../../src/core/errors.js';

it('an oversize referrers list is answered 503 ServiceUnavailable, as REGISTRY_ERROR is', () => {
  for (const code of ['REGISTRY_ERROR', 'REGISTRY_REFERRERS_TOO_LARGE'] as const) {
    const r = denyFor('u', new CtError(code, 'x')).response;
    expect(r.allowed).toBe(false);
    expect(r.status).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
  }
  expect(denyFor('u', new CtError('VSA_INVALID', 'x')).response.status).toMatchObject({ code: 403 });
});
