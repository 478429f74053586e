import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { formatCheckpoint, parseCheckpoint, signCheckpoint, signNote, verifyCheckpoint } from '../../src/tlog/index.js';
import { codeOf as code } from '../support/error-code.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const root = Buffer.alloc(32, 7);
const cp = { origin: 'logs.example.org/ct', treeSize: 42, rootHash: root };
const note = signCheckpoint(cp, 'logs.example.org/ct', privateKey);


describe('checkpoints (C2SP tlog-checkpoint in a signed note)', () => {
  it('formats the three lines and the signature line', () => {
    expect(formatCheckpoint(cp)).toBe(`logs.example.org/ct\n42\n${root.toString('base64')}\n`);
    const lines = note.split('\n');
    expect(lines.slice(0, 4)).toEqual(['logs.example.org/ct', '42', root.toString('base64'), '']);
    expect(lines[4]).toMatch(/^\u2014 logs\.example\.org\/ct [A-Za-z0-9+/]+=*$/u);
    expect(Buffer.from(lines[4].split(' ')[2], 'base64')).toHaveLength(68);
    expect(lines[5]).toBe('');
  });

  it('round-trips, with extension lines', () => {
    expect(parseCheckpoint(note)).toEqual(cp);
    const withExt = signCheckpoint({ ...cp, extensions: ['ext one', 'ext two'] }, 'k', privateKey);
    expect(verifyCheckpoint(withExt, 'k', publicKey).extensions).toEqual(['ext one', 'ext two']);
  });

  it('verifies with the signing key and ignores signature lines of unknown keys', () => {
    expect(verifyCheckpoint(note, 'logs.example.org/ct', publicKey).treeSize).toBe(42);
    const cosigned = `${note}${signNote(formatCheckpoint(cp), 'witness', other.privateKey).split('\n\n')[1]}`;
    expect(verifyCheckpoint(cosigned, 'logs.example.org/ct', publicKey).treeSize).toBe(42);
    expect(verifyCheckpoint(cosigned, 'witness', other.publicKey).treeSize).toBe(42);
  });

  const tampered: [string, string][] = [
    ['size changed', note.replace('\n42\n', '\n43\n')],
    ['root changed', note.replace(root.toString('base64'), Buffer.alloc(32, 8).toString('base64'))],
    ['origin changed', note.replace('logs.example.org/ct\n42', 'logs.example.org/cx\n42')],
    ['signature line removed', note.split('\n\n')[0] + '\n\n'],
    ['key hash altered', note.replace(/ (\S)(\S+)\n$/u, (_m, a: string, b: string) => ` ${a === 'A' ? 'B' : 'A'}${b}\n`)],
    ['signature bytes altered', note.replace(/ (\S{20})(\S)(\S+)\n$/u, (_m, a: string, c: string, b: string) => ` ${a}${c === 'A' ? 'B' : 'A'}${b}\n`)],
    ['no blank line', note.replace('\n\n', '\n')],
    ['size with leading zero', note.replace('\n42\n', '\n042\n')],
    ['root not base64', note.replace(root.toString('base64'), '!!!')],
  ];
  it.each(tampered)('rejects a checkpoint with %s as LOG_PROOF_INVALID', (_n, bad) => {
    expect(code(() => verifyCheckpoint(bad, 'logs.example.org/ct', publicKey))).toBe('LOG_PROOF_INVALID');
  });

  it('rejects another key, another name, and a wrong expected origin', () => {
    expect(code(() => verifyCheckpoint(note, 'logs.example.org/ct', other.publicKey))).toBe('LOG_PROOF_INVALID');
    expect(code(() => verifyCheckpoint(note, 'someone-else', publicKey))).toBe('LOG_PROOF_INVALID');
    expect(code(() => verifyCheckpoint(note, 'logs.example.org/ct', publicKey, 'elsewhere'))).toBe('LOG_PROOF_INVALID');
  });

  it('refuses to format what it could not parse back', () => {
    expect(code(() => formatCheckpoint({ ...cp, origin: 'two\nlines' }))).toBe('LOG_PROOF_INVALID');
    expect(code(() => formatCheckpoint({ ...cp, treeSize: -1 }))).toBe('LOG_PROOF_INVALID');
    expect(code(() => formatCheckpoint({ ...cp, rootHash: Buffer.alloc(31) }))).toBe('LOG_PROOF_INVALID');
    expect(code(() => signCheckpoint(cp, 'bad name', privateKey))).toBe('LOG_PROOF_INVALID');
  });
});
