/**
 * @module --reload: watch the application's Python files and ask for a worker reload on change.
 *
 * For web2py that is gluon/, applications/<app>/modules/ and routes.py (models, controllers and
 * views are re-read by web2py on every request, so they need no reload); for `--app` it is the
 * module's folder. Changes are debounced: an editor's save-rename-chmod burst is one reload.
 */
import { watch, existsSync, readdirSync, type FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import { LogEvents } from '../observability/events.js';
import type { Logger } from '../observability/log.js';

const DEBOUNCE_MS = 300;

export interface WatchTarget {
  /** A folder (watched recursively) or a single file. */
  path: string;
  isFolder: boolean;
}

/** What to watch for a web2py folder or a WSGI module folder. */
export function watchTargets(app: { kind: 'web2py'; folder: string } | { kind: 'wsgi'; cwd: string } | { kind: 'demo' }): WatchTarget[] {
  if (app.kind === 'demo') return [];
  if (app.kind === 'wsgi') return [{ path: app.cwd, isFolder: true }];
  const targets: WatchTarget[] = [{ path: join(app.folder, 'gluon'), isFolder: true }];
  const applications = join(app.folder, 'applications');
  if (existsSync(applications)) {
    for (const name of readdirSync(applications)) {
      const modules = join(applications, name, 'modules');
      if (existsSync(modules)) targets.push({ path: modules, isFolder: true });
    }
  }
  // routes.py may not exist yet: watch the folder itself, not recursively, for it.
  targets.push({ path: app.folder, isFolder: false });
  return targets;
}

export class CodeWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | null = null;
  private changed: string | null = null;

  constructor(targets: WatchTarget[], private readonly onChange: (file: string) => void, private readonly log: Logger) {
    for (const target of targets) {
      try {
        const watcher = watch(target.path, { recursive: target.isFolder }, (_event, name) => {
          if (name === null) return;
          const file = join(target.path, name.toString());
          if (!file.endsWith('.py')) return;
          if (!target.isFolder && !file.endsWith('routes.py')) return;
          this.schedule(file);
        });
        watcher.on('error', () => undefined); // a watched folder removed: nothing to reload
        this.watchers.push(watcher);
      } catch (error: unknown) {
        LogEvents.reloadWatchFailed(log, { path: target.path, error });
      }
    }
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    for (const watcher of this.watchers) watcher.close();
  }

  private schedule(file: string): void {
    this.changed = file;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const changed = this.changed ?? '';
      LogEvents.reloadFileChanged(this.log, { file: relative(process.cwd(), changed) || changed });
      this.onChange(changed);
    }, DEBOUNCE_MS);
  }
}
