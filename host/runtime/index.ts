/** Container runtime of the host: runc with per-container supervisors and SQLite state. */
export { RuncRuntime, type RuncOptions, type CreateOptions } from './runc.js';
export { ContainerStore, type ContainerRecord, type ContainerStatus, type StateChange } from './state.js';
export type { ExitRecord } from './supervisor.js';
export { runTool, spawnTool, type ToolResult } from './tools.js';
export { VordrClient, VORDR_TOOLS, type VordrTool } from './vordr.js';
