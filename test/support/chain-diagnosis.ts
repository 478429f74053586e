/**
 * Why a keyless bundle's leaf certificate does not chain to a trusted root, told by OpenSSL
 * (node:crypto's X509Certificate), independently of @sigstore/core and our fast path. A test whose
 * signing job fails with UNTRUSTED_ROOT appends this to its failure message: a rare failure of that
 * kind (test/action/gitlab.test.ts, about one full run in seven) was never reproduced alone, so the
 * evidence has to come from the failing run itself.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { openCtp } from '../../src/bundle/read.js';

interface CaJson { certChain?: { certificates?: { rawBytes: string }[] }; validFor?: { start?: string } }

function describeCert(c: X509Certificate): Record<string, unknown> {
  return {
    subject: c.subject, issuer: c.issuer, serial: c.serialNumber, validFrom: c.validFrom, validTo: c.validTo,
    fingerprint256: c.fingerprint256, keyId: createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16),
  };
}

/** A JSON report: the leaf of `file` in the .ctp, every CA certificate of the trusted root, and which (if any) signed the leaf. */
export async function diagnoseChain(ctpPath: string, file: string, trustedRootPath: string): Promise<string> {
  try {
    const ctp = await openCtp(ctpPath);
    const bundle = JSON.parse(ctp.file(file).toString('utf8')) as { verificationMaterial?: { certificate?: { rawBytes: string }; x509CertificateChain?: { certificates: { rawBytes: string }[] } } };
    const vm = bundle.verificationMaterial ?? {};
    const leafB64 = vm.certificate?.rawBytes ?? vm.x509CertificateChain?.certificates[0]?.rawBytes;
    if (!leafB64) return `${file}: no certificate in the bundle`;
    const leaf = new X509Certificate(Buffer.from(leafB64, 'base64'));
    const root = JSON.parse(await readFile(trustedRootPath, 'utf8')) as { certificateAuthorities?: CaJson[] };
    const cas = (root.certificateAuthorities ?? []).flatMap((ca, i) => (ca.certChain?.certificates ?? []).map((c, j) => {
      const cert = new X509Certificate(Buffer.from(c.rawBytes, 'base64'));
      return { ca: i, position: j, validForStart: ca.validFor?.start, ...describeCert(cert), signedTheLeaf: leaf.verify(cert.publicKey), checkIssued: leaf.checkIssued(cert) };
    }));
    return JSON.stringify({ leaf: { ...describeCert(leaf), pem: leaf.toString() }, trustedCas: cas }, null, 1);
  } catch (e) {
    return `diagnosis failed: ${(e as Error).message}`;
  }
}
