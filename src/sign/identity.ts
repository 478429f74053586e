/**
 * Where the OIDC identity token for keyless signing comes from: an explicit token, or the CI job
 * (GitHub Actions' token endpoint ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, GitLab's SIGSTORE_ID_TOKEN
 * from `id_tokens:`), which is what @sigstore/sign's CIContextProvider reads.
 */
import { CIContextProvider, type IdentityProvider } from '@sigstore/sign';
import { CtError } from '../core/errors.js';

export interface IdentitySource {
  /** An explicit token (`--identity-token`); wins over the environment. */
  identityToken?: string;
  /** Audience requested from the CI token endpoint (Fulcio expects `sigstore`). */
  audience?: string;
}

export function identityProvider(src: IdentitySource): IdentityProvider {
  if (src.identityToken !== undefined) {
    const token = src.identityToken.trim();
    if (token.split('.').length !== 3) throw new CtError('USAGE', 'identity token: not a JWT (three dot-separated parts)', { where: 'identityToken' });
    return { getToken: async () => token };
  }
  const ci = new CIContextProvider(src.audience ?? 'sigstore');
  return {
    getToken: async () => {
      try {
        return await ci.getToken();
      } catch (e) {
        throw new CtError('USAGE', 'no identity token: pass one explicitly, or run in GitHub Actions (permissions: id-token: write) or GitLab CI (id_tokens: SIGSTORE_ID_TOKEN with aud sigstore)', { where: 'identityToken' }, { cause: e });
      }
    },
  };
}
