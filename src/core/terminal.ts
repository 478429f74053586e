/**
 * Characters a message may carry from outside (a registry's error body, a container's process
 * name, a server's answer) that a terminal acts on instead of showing: C0 controls but tab and
 * newline (ESC starts the sequences that set titles, write the clipboard or hide text; CR rewrites
 * the line), DEL, the C1 controls (0x9b is a one-byte CSI on many terminals) and the invisible
 * or direction-changing marks that make shown text differ from what it says (Trojan Source).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]/g;

/** `text` with every such character written as a visible `\uXXXX` escape. */
export function terminalText(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
