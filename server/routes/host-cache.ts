import type { Db } from '../store/db.js';
import type { InventoryItem } from '../../src/protocol/messages.js';

export interface HostRow { id: string; name: string; labels: Record<string, string>; containers: Map<string, InventoryItem & { health?: string }> }

/**
 * Hosts with their inventories parsed into maps by container id. A host's inventory is parsed
 * again only when its stored text changed (any replica may have written it): a fleet reporting
 * thousands of containers is not re-parsed for every overview page.
 */
export class HostCache {
  private readonly parsed = new Map<string, { raw: string; labels: string; row: HostRow }>();

  async read(db: Db): Promise<HostRow[]> {
    const rows = await db.query<{ id: string; name: string; labels: string; containers: string }>('SELECT id, name, labels, containers FROM hosts ORDER BY name');
    const out: HostRow[] = [];
    for (const h of rows) {
      const hit = this.parsed.get(h.id);
      if (hit && hit.raw === h.containers && hit.labels === h.labels && hit.row.name === h.name) {
        out.push(hit.row);
        continue;
      }
      const items = JSON.parse(h.containers) as (InventoryItem & { health?: string })[];
      const row: HostRow = { id: h.id, name: h.name, labels: JSON.parse(h.labels) as Record<string, string>, containers: new Map(items.map((c) => [c.id, c])) };
      this.parsed.set(h.id, { raw: h.containers, labels: h.labels, row });
      out.push(row);
    }
    // Hosts removed from the table leave the cache too.
    if (this.parsed.size > rows.length) {
      const ids = new Set(rows.map((h) => h.id));
      for (const id of this.parsed.keys()) if (!ids.has(id)) this.parsed.delete(id);
    }
    return out;
  }
}
