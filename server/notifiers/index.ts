import type { Db } from '../store/db.js';
import type { ServerConfig } from '../config.js';
import type { Notifier, NotifierState } from './notifier.js';
import { GitHubNotifier } from './github.js';
import { GitLabNotifier } from './gitlab.js';

export function dbNotifierState(db: Db): NotifierState {
  return {
    async get(id, key) {
      const [row] = await db.query<{ value: string }>('SELECT value FROM notifier_state WHERE deployment_id = ? AND key = ?', [id, key]);
      return row?.value;
    },
    async set(id, key, value) {
      await db.run('INSERT INTO notifier_state (deployment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (deployment_id, key) DO UPDATE SET value = excluded.value', [id, key, value]);
    },
  };
}

/** The one place that maps provider names to notifiers; unknown names are rejected. */
export function notifiersFor(config: ServerConfig, db: Db): Record<'github' | 'gitlab', Notifier | undefined> {
  return {
    github: config.github ? new GitHubNotifier(config.github, dbNotifierState(db)) : undefined,
    gitlab: config.gitlab ? new GitLabNotifier(config.gitlab) : undefined,
  };
}
