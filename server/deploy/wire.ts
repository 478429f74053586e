import type { Router } from 'express';
import type { ServerContext } from '../context.js';

/**
 * Contributes the deploy pipeline's routes and job handlers to a started server context.
 * Grows as the pipeline lands (GitOps reconcile, verification, dispatch, notifiers).
 */
export async function deployPipeline(_ctx: ServerContext): Promise<{ routers?: Router[]; close?: () => Promise<void> }> {
  return { routers: [] };
}
