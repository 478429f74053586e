/**
 * A DNS-1123 label, as Kubernetes requires of a namespace's name (and as admission environments,
 * which are namespace label values and URL path parts, are written): lower case letters, digits
 * and `-`, 1-63 characters, starting and ending with a letter or digit.
 */
export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
