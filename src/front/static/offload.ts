/**
 * @module The `--static-offload` setting: whether the front serves web2py's `/<app>/static/`
 * URLs, and the start-up line that says so.
 *
 * Apart from serve.ts so that a front that serves no static file (static offload off, or an
 * application other than web2py) never loads serve.ts, file-cache.ts and their packages (`send`,
 * `fresh`, `etag`, `mime-types`): server.ts imports those only when offload is on, once, at
 * start-up (README: "A front that loads less").
 */

export type StaticOffloadMode = 'auto' | 'on' | 'off';

export interface StaticOffloadFacts {
  readonly mode: StaticOffloadMode;
  /** Serving web2py (not `--app`): only web2py has the `/<app>/static/` convention. */
  readonly isWeb2py: boolean;
  /** `routes.py` in the web2py folder: its rewrites can move static URLs elsewhere. */
  readonly hasRoutesPy: boolean;
}

/** `auto` = on only without routes.py; `on`/`off` as said; never for a non-web2py app. */
export function isStaticOffloadEnabled(facts: StaticOffloadFacts): boolean {
  if (!facts.isWeb2py || facts.mode === 'off') return false;
  return facts.mode === 'on' || !facts.hasRoutesPy;
}

/** The start-up line saying who serves `/<app>/static/` and why. */
export function describeStaticOffload(facts: StaticOffloadFacts): string {
  if (!facts.isWeb2py) return 'static files: served by the application (not web2py)';
  if (facts.mode === 'off') return 'static files: served by web2py (--static-offload off)';
  if (facts.mode === 'on') {
    return facts.hasRoutesPy
      ? 'static files: served by the front (--static-offload on; routes.py is not applied to /<app>/static/ URLs)'
      : 'static files: served by the front (--static-offload on)';
  }
  return facts.hasRoutesPy
    ? 'static files: served by web2py (routes.py present; --static-offload on to serve them from the front)'
    : 'static files: served by the front (auto: no routes.py)';
}
