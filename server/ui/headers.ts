import helmet from 'helmet';

/**
 * Security headers on every answer (helmet), with a strict Content-Security-Policy: the dashboard
 * loads only its own script and stylesheet, inline script and style are refused, nothing may frame
 * it, forms post only to itself. Markup that slipped into a rendered string could not run.
 */
export function securityHeaders() {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'same-origin' },
  });
}
