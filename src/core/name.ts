/**
 * The one rule for the names the platform keys on: apps, environments, hosts (a DNS-label-like
 * lower-case name, at most 63 characters). One definition, so a name one part accepts is never
 * refused by another.
 */
export const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
