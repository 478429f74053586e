// oidc-provider ships no type declarations; the tests use a small part of it (oidc-login.ts).
declare module 'oidc-provider';
