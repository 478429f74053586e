import type { Response } from 'express';
import { escapeHtml } from './escape.js';

/**
 * The page a refused sign-in shows (OpenID Connect or a one-time link): a person reads it in the
 * browser, so it is HTML, with the stable code in `data-code` for tests and support. Never cached:
 * it answers a request that carried a secret (a link's token, an issuer's code).
 */
export function loginErrorPage(res: Response, status: number, code: string, message: string): void {
  res.status(status).set('cache-control', 'no-store').type('html').send(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title><link rel="stylesheet" href="/ui/app.css"></head>` +
      `<body><main class="login"><h1>Sign-in failed</h1><p>${escapeHtml(message)}</p><p>Code: <code data-code>${escapeHtml(code)}</code></p><p><a href="/">Back to the dashboard</a></p></main></body></html>`,
  );
}
