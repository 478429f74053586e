/**
 * `WWW-Authenticate` parsing (RFC 7235 auth-params). Hand-written because none of our
 * dependencies parses challenges; it accepts only what the grammar allows and ignores the rest.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
  };
  const token = (): string => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(text.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < n) {
    skipWs();
    const scheme = token();
    if (!scheme) break;
    const params: Record<string, string> = {};
    out.push({ scheme: scheme.toLowerCase(), params });
    // auth-params: name = token | quoted-string, separated by commas, until the next scheme.
    for (;;) {
      const save = i;
      skipWs();
      const name = token();
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (!name || text[i] !== '=') {
        i = save;
        break;
      }
      i++;
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i++];
        }
        i++;
      } else {
        value = token();
      }
      params[name.toLowerCase()] = value;
    }
  }
  return out;
}
