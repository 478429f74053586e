/**
 * A newest-first list's page cursor, as the API hands it out (`next`) and takes it back
 * (`?before=`): `<created_at>:<id>` (server/routes/page.ts). One pattern for the API that parses
 * it, its OpenAPI description and the MCP tools that pass it on.
 */
export const PAGE_CURSOR = /^([0-9]{1,15}):([A-Za-z0-9_-]{1,64})$/;
