/**
 * A test OIDC issuer: ES256 keys generated per run, tokens shaped like the ones GitHub Actions and
 * GitLab CI hand to jobs (issuer, sub and the workflow claims Fulcio turns into certificate
 * extensions). The mock Fulcio (sigstore-mock.ts) verifies them against this issuer's key, as
 * the real Fulcio verifies against the issuer's JWKS.
 */
import { generateKeyPair, SignJWT, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import { randomUUID } from 'node:crypto';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const GITLAB_ISSUER = 'https://gitlab.com';

export interface GithubClaimsInput {
  repository?: string;
  repositoryId?: string;
  owner?: string;
  ownerId?: string;
  ref?: string;
  sha?: string;
  /** Path of the workflow that runs the job (the called one for reusable workflows). */
  jobWorkflowPath?: string;
  /** Path of the caller workflow; equals jobWorkflowPath unless a reusable workflow is called. */
  workflowPath?: string;
  /** Repository of the called reusable workflow (defaults to `repository`). */
  jobWorkflowRepository?: string;
  eventName?: string;
  runnerEnvironment?: string;
}

export interface GitlabClaimsInput {
  projectPath?: string;
  projectId?: string;
  namespaceId?: string;
  ref?: string;
  sha?: string;
  pipelineSource?: string;
  runnerEnvironment?: string;
}

export class TestOidcIssuer {
  private constructor(private readonly privateKey: CryptoKey, private readonly publicKey: CryptoKey) {}

  static async create(): Promise<TestOidcIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    return new TestOidcIssuer(privateKey, publicKey);
  }

  /** Signs any claim set (iss and aud included by the caller). */
  async token(claims: JWTPayload, ttlSeconds = 300): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'ct-test', typ: 'JWT' })
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + ttlSeconds)
      .sign(this.privateKey);
  }

  /** What Fulcio does first: signature, expiry and audience. */
  async verify(token: string, audience = 'sigstore'): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, this.publicKey, { audience });
    return payload;
  }

  /** Claims of a GitHub Actions job token (names and shapes as GitHub documents them). */
  static githubClaims(i: GithubClaimsInput = {}): JWTPayload {
    const repository = i.repository ?? 'acme/app';
    const owner = i.owner ?? repository.split('/')[0];
    const ref = i.ref ?? 'refs/heads/main';
    const sha = i.sha ?? 'a'.repeat(40);
    const workflowPath = i.workflowPath ?? '.github/workflows/release.yml';
    const jobWorkflowPath = i.jobWorkflowPath ?? workflowPath;
    const jobRepo = i.jobWorkflowRepository ?? repository;
    return {
      iss: GITHUB_ISSUER,
      aud: 'sigstore',
      sub: `repo:${repository}:ref:${ref}`,
      ref,
      ref_type: 'branch',
      ref_protected: 'true',
      sha,
      repository,
      repository_id: i.repositoryId ?? '100200300',
      repository_owner: owner,
      repository_owner_id: i.ownerId ?? '4004004',
      repository_visibility: 'public',
      actor: 'octocat',
      actor_id: '583231',
      run_id: '9000000001',
      run_number: '17',
      run_attempt: '1',
      workflow: 'Release',
      event_name: i.eventName ?? 'push',
      head_ref: '',
      base_ref: '',
      workflow_ref: `${repository}/${workflowPath}@${ref}`,
      workflow_sha: sha,
      job_workflow_ref: `${jobRepo}/${jobWorkflowPath}@${ref}`,
      job_workflow_sha: sha,
      runner_environment: i.runnerEnvironment ?? 'github-hosted',
    };
  }

  /** Claims of a GitLab CI `id_tokens` token with `aud: sigstore`. */
  static gitlabClaims(i: GitlabClaimsInput = {}): JWTPayload {
    const projectPath = i.projectPath ?? 'acme-group/app';
    const ref = i.ref ?? 'main';
    const sha = i.sha ?? 'b'.repeat(40);
    return {
      iss: GITLAB_ISSUER,
      aud: 'sigstore',
      sub: `project_path:${projectPath}:ref_type:branch:ref:${ref}`,
      namespace_id: i.namespaceId ?? '7007',
      namespace_path: projectPath.split('/').slice(0, -1).join('/'),
      project_id: i.projectId ?? '20020',
      project_path: projectPath,
      user_id: '42',
      user_login: 'ci-user',
      pipeline_id: '1234',
      pipeline_source: i.pipelineSource ?? 'push',
      job_id: '5678',
      ref,
      ref_type: 'branch',
      ref_path: `refs/heads/${ref}`,
      ref_protected: 'true',
      runner_id: '1',
      runner_environment: i.runnerEnvironment ?? 'gitlab-hosted',
      sha,
      project_visibility: 'public',
      ci_config_ref_uri: `gitlab.com/${projectPath}//.gitlab-ci.yml@refs/heads/${ref}`,
      ci_config_sha: sha,
    };
  }
}
