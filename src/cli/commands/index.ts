import type { Command } from 'commander';
import { register as pack } from './pack.js';
import { register as inspect } from './inspect.js';
import { register as unpack } from './unpack.js';
import { register as keygen } from './keygen.js';
import { register as key } from './key.js';
import { register as trustStore } from './trust-store.js';
import { register as log } from './log.js';
import { register as vcs } from './vcs.js';
import { register as verify } from './verify.js';
import { register as sign } from './sign.js';
import { register as attest } from './attest.js';
import { register as signBundle } from './sign-bundle.js';
import { register as verifyBundle } from './verify-bundle.js';
import { register as trust } from './trust.js';
import { register as push } from './push.js';
import { register as fetch } from './fetch.js';
import { register as policy } from './policy.js';
import { register as profile } from './profile.js';
import { register as host } from './host.js';
import { register as serve } from './serve.js';

/** One file per command; each registers itself on the program. */
export const commands: ((program: Command) => void)[] = [
  pack,
  inspect,
  unpack,
  keygen,
  key,
  trustStore,
  log,
  vcs,
  verify,
  sign,
  attest,
  signBundle,
  verifyBundle,
  trust,
  push,
  fetch,
  policy,
  profile,
  host,
  serve,
];
