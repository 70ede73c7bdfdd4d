/** @module The server's version, from package.json: what `--version` prints and the status page shows. */
import { readFileSync } from 'node:fs';

export const serverVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
