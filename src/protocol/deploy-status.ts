/**
 * A deployment's status, a closed set (what each means: server/deploy/status.ts). One list for the
 * type, the API's OpenAPI description and the MCP tools' `status` argument.
 */
export const DEPLOY_STATUSES = ['queued', 'fetching', 'verifying', 'dispatching', 'succeeded', 'denied', 'failed', 'superseded', 'error'] as const;

export type DeployStatus = (typeof DEPLOY_STATUSES)[number];
