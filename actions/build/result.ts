/** What a build run produced, for outputs, the job summary and the commit status. */
export interface BuildAttestation {
  predicateType: string;
  /** Path inside the .ctp. */
  path: string;
  digest: string;
  rekorLogIndex?: number;
  logs: { logId: string; ok: boolean; logIndex?: number; message?: string }[];
}

export interface BuildResult {
  ok: boolean;
  name?: string;
  version?: string;
  bundlePath?: string;
  imageDigest?: string;
  bundleDigest?: string;
  signing: 'keyless' | 'key';
  /** Keyless: the certificate's issuer and SAN; key: the key id. */
  identity?: { issuer?: string | null; subject?: string | null; keyId?: string };
  attestations: BuildAttestation[];
  verification?: { decision: 'ALLOW' | 'REJECT' | 'SKIPPED'; code: string | null; message?: string; logEntriesVerified?: number };
  policy?: { allow: boolean; policies: string[]; message?: string };
  pushed?: { reference: string; artifacts: number };
  promotion?: { outcome: string; url?: string; allowed: boolean };
  error?: { code: string; message: string };
  warnings: string[];
}
